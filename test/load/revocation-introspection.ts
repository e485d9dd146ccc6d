import { eventually, freePort } from '@grantline/testing';
import autocannon from 'autocannon';
import { cpuSnapshot, cpuSpent, perRequest } from './cpu.ts';
import type { childProcesses } from './processes.ts';
import type { Connection } from './revocation-grants.ts';
import { basicAuth, type RevocationStack } from './revocation-stack.ts';
import { alternated, fmt } from './stats.ts';

interface Target {
  name: string;
  /** the process that answers, as the CPU accounting names it (`cpu.ts`) */
  process: string;
  url: string;
  authorization: string;
  tokens: string[];
}

/**
 * Part 3 of bench:revocation: RFC 7662 introspections/s, Grantline's introspection service (its own
 * port; JWT access tokens of authorization-code grants, each with its organisations, asked by the
 * invoices API's resource-server client) against node-oidc-provider 9 (its in-memory adapter; opaque
 * access tokens, the only ones it introspects, asked by the client they were issued to). The same
 * number of distinct live tokens on each side, cycled; each side alone, warm-up first, then runs
 * alternated with the median reported; only 2xx JSON answers saying `active: true` count.
 */
export const measureIntrospection = async (
  s: RevocationStack,
  connections: Connection[],
  spawnTs: ReturnType<typeof childProcesses>['spawnTs'],
  options: { seconds: number; warmUpSeconds: number; rounds: number; concurrencies: number[] },
) => {
  const peerPort = await freePort();
  const peerClient = s.background;
  await spawnTs(
    'test/load/oidc-provider-peer.ts',
    {
      PORT: String(peerPort),
      CLIENT_ID: peerClient.clientId,
      CLIENT_SECRET: peerClient.clientSecret,
      ACCESS_TOKEN_FORMAT: 'opaque',
    },
    'ready',
  );
  const peerAuthorization = basicAuth(peerClient.clientId, peerClient.clientSecret);
  const peerTokens: string[] = [];
  for (let i = 0; i < connections.length; i++) {
    const res = await fetch(`http://127.0.0.1:${peerPort}/token`, {
      method: 'POST',
      headers: { authorization: peerAuthorization, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=api.read',
    });
    peerTokens.push(((await res.json()) as { access_token: string }).access_token);
  }
  const peer: Target = {
    name: 'node-oidc-provider',
    process: 'node-oidc-provider',
    url: `http://127.0.0.1:${peerPort}/token/introspection`,
    authorization: peerAuthorization,
    tokens: peerTokens,
  };
  const grantline: Target = {
    name: 'grantline',
    process: 'introspection',
    url: s.introspectionUrl,
    authorization: basicAuth(s.resourceServer.clientId, s.resourceServer.clientSecret),
    tokens: connections.map((c) => c.accessToken),
  };
  for (const target of [peer, grantline])
    await eventually(async () => ((await introspect(target, target.tokens[0]!)).active ? true : undefined), {
      what: `${target.name} to introspect its first token as active`,
    });

  const lines = [
    `3. introspections/s (RFC 7662), ${connections.length} distinct live tokens cycled, ${options.rounds} runs of ${options.seconds} s per side alternated`,
    `   (node-oidc-provider then Grantline, then the other way round, ...; the median reported) after ${options.warmUpSeconds} s of warm-up, each side alone`,
    '   (autocannon; only 2xx JSON answers saying active counted). Grantline: its introspection service, JWT access tokens of',
    '   authorization-code grants, asked by the resource server; node-oidc-provider: opaque tokens (it does not introspect',
    '   JWT access tokens), in-memory adapter, asked by their client',
  ];
  const ratios: number[] = [];
  for (const connections of options.concurrencies) {
    for (const target of [peer, grantline]) await drive(target, connections, options.warmUpSeconds);
    const {
      medians: [p, g],
      runs,
    } = await alternated(
      options.rounds,
      [() => drive(peer, connections, options.seconds), () => drive(grantline, connections, options.seconds)],
      (r) => r.rate,
    );
    ratios.push(g.rate / p.rate);
    lines.push(
      `concurrency ${connections}:`,
      ...[p, g].map(
        (r, i) =>
          `  ${r.name.padEnd(20)} ${fmt(r.rate, 0).padStart(7)} introspections/s  p50 ${fmt(r.p50)} ms  p99 ${fmt(r.p99)} ms` +
          `  (active ${r.active}/${r.ok} counted; not counted ${r.notCounted}; runs ${runs[i]!.map((x) => fmt(x.rate, 0)).join(', ')})` +
          `\n    CPU per introspection, that run: ${r.process} process ` +
          `${fmt(((r.cpu.get(r.process) ?? 0) * 1000) / Math.max(1, r.active), 3)} ms; ` +
          `${perRequest(r.cpu, r.active)} (the machine's, the other side's idle processes included)`,
      ),
      `  ratio grantline/node-oidc-provider ${fmt(g.rate / p.rate, 2)}x; target >= 2x: ${g.rate / p.rate >= 2 ? 'met' : 'NOT met'}`,
    );
  }
  console.log(lines.join('\n'));
  return ratios;
};

const introspect = async (target: Target, token: string) => {
  const res = await fetch(target.url, {
    method: 'POST',
    headers: { authorization: target.authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  return res.status === 200 ? ((await res.json()) as { active?: boolean }) : {};
};

const drive = async (target: Target, connections: number, seconds: number) => {
  let next = 0;
  let ok = 0;
  let active = 0;
  let notCounted = 0;
  const before = cpuSnapshot();
  const result = await autocannon({
    url: target.url,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        headers: { authorization: target.authorization, 'content-type': 'application/x-www-form-urlencoded' },
        setupRequest: (req: Record<string, unknown>) => ({
          ...req,
          body: `token=${encodeURIComponent(target.tokens[next++ % target.tokens.length]!)}`,
        }),
        onResponse: (status: number, body: string) => {
          try {
            const answer = JSON.parse(body) as { active?: unknown };
            if (status < 200 || status > 299 || typeof answer !== 'object' || answer === null)
              throw new Error();
            ok++;
            if (answer.active === true) active++;
          } catch {
            notCounted++;
          }
        },
      },
    ],
  });
  const cpu = cpuSpent(before, cpuSnapshot());
  return {
    name: target.name,
    process: target.process,
    cpu,
    // active answers only: an expired or unknown token's `{"active": false}` is cheaper to give
    rate: active / seconds,
    ok,
    active,
    notCounted: notCounted + result.errors + result.timeouts,
    p50: result.latency.p50 as number,
    p99: result.latency.p99 as number,
  };
};
