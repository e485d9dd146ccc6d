import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DenyList } from '../src/deny-list.ts';
import { InvalidToken } from '../src/errors.ts';
import { VerifiedTokenCache } from '../src/verified-cache.ts';
import { createVerifier, type GrantlineAccessToken } from '../src/verifier.ts';

const ISSUER = 'https://as.example';
const AUDIENCE = 'https://invoices.example';
const claims = (exp: number) =>
  ({ sub: 's', client_id: 'c', jti: randomUUID(), exp }) as GrantlineAccessToken;

describe('the verified-token cache: bounded, never past exp', () => {
  it('returns a stored token until its exp, and nothing after', () => {
    let now = 1_000_000;
    const cache = new VerifiedTokenCache(10, () => now);
    cache.set('a', claims(1_060)); // exp 1,060 s = 1,060,000 ms
    expect(cache.get('a')?.sub).toBe('s');
    now = 1_059_999;
    expect(cache.get('a')).toBeDefined();
    now = 1_060_000;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
    // an already expired token is not stored at all
    cache.set('b', claims(1_000));
    expect(cache.get('b')).toBeUndefined();
  });

  it('holds at most maxEntries, dropping the oldest first; 0 stores nothing', () => {
    const cache = new VerifiedTokenCache(3, () => 0);
    for (const jwt of ['a', 'b', 'c', 'd']) cache.set(jwt, claims(60));
    expect(cache.size).toBe(3);
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('d')).toBeDefined();
    const off = new VerifiedTokenCache(0, () => 0);
    off.set('a', claims(60));
    expect(off.get('a')).toBeUndefined();
  });

  it('hands out a copy: a caller editing its claims does not edit the next caller’s', () => {
    const cache = new VerifiedTokenCache(3, () => 0);
    cache.set('a', claims(60));
    cache.get('a')!.sub = 'admin';
    expect(cache.get('a')!.sub).toBe('s');
  });
});

describe('the verifier with its cache: a revocation still takes effect on the next call', () => {
  let server: Server;
  let jwksUri: string;
  let privateKey: CryptoKey;
  let jwksFetches = 0;
  const published: JWK[] = [];

  beforeAll(async () => {
    const keys = await generateKeyPair('ES256', { extractable: true });
    privateKey = keys.privateKey;
    published.push({ ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' });
    server = createServer((_req, res) => {
      jwksFetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
    jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });
  afterAll(() => server.close());

  const sign = (extra: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'user-1',
      client_id: 'client-1',
      jti: randomUUID(),
      grant_id: 'grant-1',
      organisations: ['org-1', 'org-2'],
      scope: 'invoices.read',
      iat: now,
      exp: now + 300,
      ...extra,
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
      .sign(privateKey);
  };

  /** a fresh deny-list, as a subscriber keeps it */
  const denyList = () => {
    const list = new DenyList();
    list.heartbeat();
    return list;
  };
  const fact = (key: string) => ({
    key,
    revokedAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 600_000).toISOString(),
    sequence: 1,
  });

  it('checks the deny-list on every call: an organisation, then the grant, revoked after caching', async () => {
    const list = denyList();
    const { verify } = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri,
      revocations: { denyList: list },
    });
    const jwt = await sign();
    await verify(jwt, { organisation: 'org-1' });
    await verify(jwt, { organisation: 'org-1' }); // cached now
    list.apply(fact('grant-org:grant-1:org-1'));
    await expect(verify(jwt, { organisation: 'org-1' })).rejects.toBeInstanceOf(InvalidToken);
    expect((await verify(jwt, { organisation: 'org-2' })).organisations).toEqual(['org-1', 'org-2']);
    list.apply(fact('grant:grant-1'));
    await expect(verify(jwt, { organisation: 'org-2' })).rejects.toBeInstanceOf(InvalidToken);
    list.close();
  });

  it('checks scopes and organisations on a cached token as on a new one', async () => {
    const list = denyList();
    const { verify } = createVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri,
      revocations: { denyList: list },
    });
    const jwt = await sign();
    await verify(jwt);
    await expect(verify(jwt, { scopes: ['invoices.write'] })).rejects.toThrow(/scope/);
    await expect(verify(jwt, { organisation: 'org-3' })).rejects.toThrow(/organisation/);
    list.close();
  });

  it('refuses a cached token once past its exp (the verifier’s clock)', async () => {
    let now = new Date();
    const { verify } = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri, now: () => now });
    const jwt = await sign();
    await verify(jwt);
    now = new Date(Date.now() + 310_000); // past exp and the 5 s tolerance
    await expect(verify(jwt)).rejects.toBeInstanceOf(InvalidToken);
  });

  it('never caches a token that failed verification', async () => {
    const { verify } = createVerifier({ issuer: ISSUER, audience: AUDIENCE, jwksUri });
    const jwt = await sign({ aud: 'https://payroll.example' });
    for (let i = 0; i < 2; i++) await expect(verify(jwt)).rejects.toBeInstanceOf(InvalidToken);
    expect(jwksFetches).toBeGreaterThan(0);
  });
});
