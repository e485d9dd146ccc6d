import { performance } from 'node:perf_hooks';
import { connectResourceServer, createVerifier } from '@grantline/resource-server';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { Connection } from './revocation-grants.ts';
import type { RevocationStack } from './revocation-stack.ts';
import { fmt } from './stats.ts';

/**
 * Part 2 of bench:revocation: token checks per second in this process, one at a time, over the same
 * mix of distinct live tokens: the SDK's `verify` (signature, claims, the deny-list of a live Kafka
 * subscription, organisation and scope) as shipped (its verified-token cache on), the same with the
 * cache off, and bare `jose` `jwtVerify` with the same key set and claim checks (no deny-list).
 * Warm-up first; then rounds in alternating order, each candidate the same number of checks.
 */
export const measureChecks = async (
  s: RevocationStack,
  connections: Connection[],
  options: { iterations: number; rounds: number },
) => {
  const { options: sdkOptions, subscriber } = await connectResourceServer({
    issuer: s.issuer,
    audience: s.resourceServerUrl,
    clientId: s.resourceServer.clientId,
    clientSecret: s.resourceServer.clientSecret,
    kafka: s.kafka,
  });
  try {
    const mix = connections.map((c) => ({ token: c.accessToken, organisation: c.organisations[0]! }));
    const cached = createVerifier(sdkOptions);
    const uncached = createVerifier({ ...sdkOptions, verifiedTokenCacheSize: 0 });
    const keys = createRemoteJWKSet(new URL(sdkOptions.jwksUri));
    const joseOptions = {
      issuer: sdkOptions.issuer,
      audience: sdkOptions.audience,
      typ: 'at+jwt',
      algorithms: ['ES256'],
      clockTolerance: 5,
      requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat'],
    };
    const candidates = {
      'SDK verify (as shipped: verified-token cache)': (t: (typeof mix)[number]) =>
        cached.verify(t.token, { organisation: t.organisation, scopes: ['invoices.read'] }),
      'SDK verify, cache off': (t: (typeof mix)[number]) =>
        uncached.verify(t.token, { organisation: t.organisation, scopes: ['invoices.read'] }),
      'jose jwtVerify': (t: (typeof mix)[number]) => jwtVerify(t.token, keys, joseOptions),
    };
    const names = Object.keys(candidates) as (keyof typeof candidates)[];
    const run = async (name: keyof typeof candidates, iterations: number) => {
      const check = candidates[name];
      const start = performance.now();
      for (let i = 0; i < iterations; i++) await check(mix[i % mix.length]!);
      return performance.now() - start;
    };
    for (const name of names) await run(name, Math.min(options.iterations, 2_000)); // warm-up
    const elapsed = Object.fromEntries(names.map((n) => [n, 0])) as Record<keyof typeof candidates, number>;
    for (let round = 0; round < options.rounds; round++) {
      const order = round % 2 === 0 ? names : [...names].reverse();
      for (const name of order) elapsed[name] += await run(name, options.iterations);
    }
    const perSecond = (name: keyof typeof candidates) =>
      (options.iterations * options.rounds * 1_000) / elapsed[name];
    const [shipped, off, jose] = names.map(perSecond) as [number, number, number];
    console.log(
      [
        `2. token checks/s, one at a time in one process, ${mix.length} distinct live tokens, ${options.rounds} rounds x ${options.iterations} checks each, alternating order, after a warm-up`,
        ...names.map((n) => `  ${n.padEnd(46)} ${fmt(perSecond(n), 0).padStart(8)} checks/s`),
        `  ratio SDK/jose ${fmt(shipped / jose, 2)}x (cache off: ${fmt(off / jose, 2)}x); target >= 1x: ${shipped >= jose ? 'met' : 'NOT met'}`,
        '  (the cache skips only the signature of a token seen before, until its exp; the deny-list, organisation and',
        '   scope are checked on every call, so a revocation applies as in part 1)',
      ].join('\n'),
    );
    return { shipped, off, jose };
  } finally {
    await subscriber.close();
  }
};
