import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ResourceServerOptions, requireAccessToken, requireScopes } from '../src/index.ts';

const ISSUER = 'https://as.example';
const AUDIENCE = 'https://invoices.example';

const listen = async (
  handler: Parameters<typeof createServer>[1],
): Promise<{ server: Server; url: string }> => {
  const server = createServer(handler);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
};

/**
 * The SDK against an authorization server of the test's own: a JWKS endpoint whose keys the test
 * controls and whose fetches it counts, so every bad token differs from a good one in one respect.
 */
describe('resource server SDK: access token verification (RFC 9068 §4, RFC 6750 §3.1)', () => {
  const published: JWK[] = [];
  let jwksFetches = 0;
  let jwks: { server: Server; url: string };
  const servers: Server[] = [];
  let trusted: { privateKey: CryptoKey; publicKey: CryptoKey };

  /** a resource server protected by the SDK: `/invoices` needs a token, `/invoices/new` also invoices.write */
  const resourceServer = async (options: Partial<ResourceServerOptions> = {}) => {
    const app = express();
    const authenticated = requireAccessToken({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: `${jwks.url}/jwks`,
      ...options,
    });
    app.get('/invoices', authenticated, (_req, res) => void res.json(res.locals.token));
    app.get(
      '/invoices/new',
      authenticated,
      requireScopes('invoices.write'),
      (_req, res) => void res.json({}),
    );
    const { server, url } = await listen(app);
    servers.push(server);
    return (token: string, path = '/invoices') =>
      fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  };

  interface Shape {
    header?: Record<string, unknown>;
    claims?: Record<string, unknown>;
    key?: CryptoKey | Uint8Array;
  }
  /** a valid access token, but for what `shape` changes */
  const token = (shape: Shape = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'user-1',
      client_id: 'client-1',
      scope: 'invoices.read',
      jti: randomUUID(),
      iat: now,
      exp: now + 300,
      ...shape.claims,
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1', ...shape.header } as { alg: string })
      .sign(shape.key ?? trusted.privateKey);
  };

  const expectInvalidToken = async (res: Response, what: string) => {
    expect(res.status, what).toBe(401);
    expect(res.headers.get('www-authenticate'), what).toMatch(/^Bearer error="invalid_token"/);
    expect(((await res.json()) as { error: string }).error, what).toBe('invalid_token');
  };

  beforeAll(async () => {
    trusted = await generateKeyPair('ES256', { extractable: true });
    published.push({ ...(await exportJWK(trusted.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' });
    jwks = await listen((_req, res) => {
      jwksFetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: published }));
    });
  });
  afterAll(() => {
    for (const s of [...servers, jwks.server]) s.close();
  });

  it('item 39: accepts a valid token, and answers each bad one with 401 invalid_token and a Bearer challenge', async () => {
    const call = await resourceServer();
    const good = await call(await token());
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({ sub: 'user-1', client_id: 'client-1' });

    const now = Math.floor(Date.now() / 1000);
    const foreign = await generateKeyPair('ES256');
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const cases: Record<string, string> = {
      // an ID token (OpenID Connect) signed by the same issuer: right key, wrong type
      'an ID-token-like JWT': await token({
        header: { typ: 'JWT' },
        claims: { nonce: 'n-0S6_WzA2Mj', auth_time: now, azp: 'client-1', aud: 'client-1' },
      }),
      'an ID-token-like JWT for this audience': await token({
        header: { typ: 'JWT' },
        claims: { nonce: 'n' },
      }),
      'another issuer': await token({ claims: { iss: 'https://evil.example' } }),
      'another audience': await token({ claims: { aud: 'https://payroll.example' } }),
      'an expired token': await token({ claims: { iat: now - 900, exp: now - 60 } }),
      'alg none': `${b64({ alg: 'none', typ: 'at+jwt', kid: 'k1' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'user-1', client_id: 'client-1', jti: 'j', iat: now, exp: now + 300 })}.`,
      // algorithm confusion: the public key used as an HMAC secret
      'HS256 keyed with the public key': await token({
        header: { alg: 'HS256' },
        key: new TextEncoder().encode(await exportSPKI(trusted.publicKey)),
      }),
      'HS256 keyed with the public JWK': await token({
        header: { alg: 'HS256' },
        key: new TextEncoder().encode(JSON.stringify(published[0])),
      }),
      'a foreign key under the trusted kid': await token({ key: foreign.privateKey }),
      'no client_id': await token({ claims: { client_id: undefined } }),
      'a tampered payload': (await token()).replace(
        /\.[^.]+\./,
        `.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'admin', client_id: 'client-1', jti: 'j', iat: now, exp: now + 300 })}.`,
      ),
    };
    for (const [what, bad] of Object.entries(cases)) await expectInvalidToken(await call(bad), what);

    // item 39: a valid token without the scope a route needs is 403 insufficient_scope
    const unscoped = await call(await token(), '/invoices/new');
    expect(unscoped.status).toBe(403);
    expect(unscoped.headers.get('www-authenticate')).toMatch(
      /^Bearer error="insufficient_scope".*scope="invoices.write"/,
    );
  });

  it('an unreachable or failing JWKS is 503 temporarily_unavailable with Retry-After, not 401; served again once the keys answer', async () => {
    let failing = true;
    const flaky = await listen((_req, res) => {
      if (failing) return void res.writeHead(500).end();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: published }));
    });
    servers.push(flaky.server);
    const closed = await listen(() => {});
    await new Promise((ok) => closed.server.close(ok));
    for (const jwksUri of [`${closed.url}/jwks`, `${flaky.url}/jwks`]) {
      const res = await (await resourceServer({ jwksUri }))(await token());
      expect(res.status, jwksUri).toBe(503);
      expect(res.headers.get('retry-after'), jwksUri).toBe('1');
      expect(await res.json(), jwksUri).toEqual({
        error: 'temporarily_unavailable',
        error_description: 'the signing keys are unavailable',
      });
    }
    // a failed fetch starts no cooldown: the next request fetches again
    const call = await resourceServer({ jwksUri: `${flaky.url}/jwks` });
    expect((await call(await token())).status).toBe(503);
    failing = false;
    expect((await call(await token())).status).toBe(200);
  });

  it('item 41: an unknown kid is refused, and a flood of them costs at most one JWKS fetch', async () => {
    const call = await resourceServer();
    expect((await call(await token())).status).toBe(200);
    const before = jwksFetches;
    const unknown = await generateKeyPair('ES256');
    const results = await Promise.all(
      Array.from({ length: 20 }, async () =>
        call(await token({ header: { kid: `k-${randomUUID()}` }, key: unknown.privateKey })),
      ),
    );
    for (const res of results) await expectInvalidToken(res, 'unknown kid');
    expect(jwksFetches - before).toBeLessThanOrEqual(1);
  });

  it('item 41: a key published by a rotation is picked up on its first unknown kid after the cooldown; old tokens still verify', async () => {
    const call = await resourceServer({ jwksCooldownSeconds: 1 });
    const old = await token();
    expect((await call(old)).status).toBe(200);
    const next = await generateKeyPair('ES256', { extractable: true });
    published.push({ ...(await exportJWK(next.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' });
    const rotated = await token({ header: { kid: 'k2' }, key: next.privateKey });
    const fetchesBefore = jwksFetches;
    // within a second of the last fetch the new kid may still be unknown; after it, it is found
    let status = 0;
    for (let attempt = 0; attempt < 40 && status !== 200; attempt++) {
      status = (await call(rotated)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    expect(jwksFetches - fetchesBefore).toBeLessThanOrEqual(2);
    expect((await call(old)).status).toBe(200);
  });
});
