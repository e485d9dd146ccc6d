import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@grantline/testing';
import { createLocalJWKSet, decodeJwt, type JWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedServer, startEmbedded } from '../src/embedded.ts';

const root = mkdtempSync(join(tmpdir(), 'grantline-embedded-introspection-'));
const API = 'https://invoices.example/';
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** The introspection service in the embedded mode: one process, the in-process bus, the in-memory deny-list. */
describe('pnpm start: introspection and the revocation stream', () => {
  let server: EmbeddedServer;
  const admin = async (path: string, body: unknown, method = 'POST') => {
    const { adminToken } = JSON.parse(readFileSync(server.secretsFile, 'utf8')) as { adminToken: string };
    const res = await fetch(`${server.managementUrl}/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return (await res.json()) as Record<string, string>;
  };
  const register = async (metadata: Record<string, unknown>) => {
    const { initial_access_token } = await admin('/initial-access-tokens', { description: 'test' });
    const res = await fetch(`${server.url}/oauth2/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${initial_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify(metadata),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { client_id: string; client_secret: string };
  };

  beforeAll(async () => {
    const port = await freePort();
    server = await startEmbedded({
      GRANTLINE_DATA_DIR: join(root, 'data'),
      PORT: String(port),
      MANAGEMENT_PORT: '0',
      GRANTLINE_DEMO: 'false',
      LOG_LEVEL: 'silent',
    });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it('introspects a token for a resource server of its audience (JSON and RFC 9701 JWT), streams heartbeats, and reports the deny-list ready', async () => {
    await admin('/scopes', { name: 'invoices.read', description: 'Read your invoices' });
    const app = await register({
      client_name: 'Ledger Sync',
      grant_types: ['client_credentials'],
      scope: 'invoices.read',
      resources: [API],
    });
    const rs = await register({
      client_name: 'Invoices API',
      grant_types: ['client_credentials'],
      resources: [API],
    });
    // a resource server only once the administrator says so (item 36)
    expect(await admin(`/clients/${rs.client_id}/resource-server`, { resources: [API] }, 'PUT')).toEqual({
      client_id: rs.client_id,
      resources: [API],
    });
    const token = await fetch(`${server.url}/oauth2/token`, {
      method: 'POST',
      headers: {
        authorization: basic(app.client_id, app.client_secret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    const { access_token } = (await token.json()) as { access_token: string };
    const introspect = (accept = 'application/json', auth = basic(rs.client_id, rs.client_secret)) =>
      fetch(`${server.url}/oauth2/introspect`, {
        method: 'POST',
        headers: { authorization: auth, accept, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: access_token }),
      });
    expect(await (await introspect()).json()).toMatchObject({
      active: true,
      client_id: app.client_id,
      aud: API,
      jti: decodeJwt(access_token).jti,
    });
    expect((await introspect('application/json', basic(rs.client_id, 'wrong'))).status).toBe(401);
    const jwt = await (await introspect('application/token-introspection+jwt')).text();
    const jwks = (await (await fetch(`${server.url}/oauth2/introspection/jwks`)).json()) as { keys: JWK[] };
    const { payload } = await jwtVerify(jwt, createLocalJWKSet(jwks), {
      issuer: server.issuer,
      audience: rs.client_id,
      typ: 'token-introspection+jwt',
    });
    expect(payload.token_introspection).toMatchObject({ active: true });

    const abort = new AbortController();
    const stream = await fetch(`${server.url}/oauth2/revocations/stream`, {
      headers: { authorization: basic(rs.client_id, rs.client_secret) },
      signal: abort.signal,
    });
    expect(stream.status).toBe(200);
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!text.includes('event: heartbeat')) text += (await reader.read()).value ?? '';
    abort.abort();
    expect(text).toMatch(/event: heartbeat\ndata: \{"time":"[^"]+","lastSequence":\d+\}/);

    // RFC 7009 revocation: the fact reaches the stream and introspection (the in-process bus and PGlite)
    const stream2 = new AbortController();
    const live = await fetch(`${server.url}/oauth2/revocations/stream`, {
      headers: { authorization: basic(rs.client_id, rs.client_secret) },
      signal: stream2.signal,
    });
    const revoked = await fetch(`${server.url}/oauth2/revoke`, {
      method: 'POST',
      headers: {
        authorization: basic(app.client_id, app.client_secret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: access_token }),
    });
    expect(revoked.status).toBe(200);
    const liveReader = live.body!.pipeThrough(new TextDecoderStream()).getReader();
    let events = '';
    const jti = String(decodeJwt(access_token).jti);
    while (!events.includes(`"key":"jti:${jti}"`)) events += (await liveReader.read()).value ?? '';
    stream2.abort();
    expect(events).toMatch(/id: \d+\nevent: revocation\ndata: \{[^\n]*"key":"jti:/);
    expect(await (await introspect()).json()).toEqual({ active: false });

    const ready = await (await fetch(`${server.managementUrl}/readyz`)).json();
    expect(ready).toMatchObject({ status: 'ready', checks: { 'revocation-cache': 'ok' } });
  });
});
