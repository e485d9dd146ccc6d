import { offsetClock } from '@grantline/clock';
import { TOPICS } from '@grantline/events';
import type { KafkaMessageBus } from '@grantline/message-bus';
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  jwtVerify,
} from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readTopic } from '../pipeline/harness.ts';
import { ADMIN_TOKEN, basic, type Stack, startStack, tokenRequest } from './stack.ts';

const API = 'https://api.example.com/accounting';

describe('client credentials, end to end with a certified client library', () => {
  let stack: Stack;
  let as: oauth.AuthorizationServer;
  /** the services' clock: key rotation's lead time is skipped, not slept through */
  const clock = offsetClock();
  beforeAll(async () => {
    // polling for a just-registered client must not trip the brute-force lock-out
    stack = await startStack(
      inject('infra'),
      {
        CLIENT_AUTH_FAILURES_PER_MINUTE: '1000',
        // one test publishes a client's keys on a loopback server
        GRANTLINE_ALLOW_PRIVATE_JWKS_URI: 'true',
        // the default: long enough that a slow machine cannot reach it unless the clock is moved
        KEY_ROTATION_LEAD_SECONDS: '300',
      },
      { clock },
    );
    await stack.defineScopes({
      'accounting.read': 'Read your accounting data',
      'accounting.write': 'Change your accounting data',
    });
    const issuer = new URL(stack.issuer);
    const discovery = await oauth.discoveryRequest(issuer, {
      algorithm: 'oauth2',
      [oauth.allowInsecureRequests]: true,
    });
    as = await oauth.processDiscoveryResponse(issuer, discovery);
  });
  afterAll(() => stack?.stop());

  const verify = (token: string, audience = API) =>
    jwtVerify(token, createRemoteJWKSet(new URL(as.jwks_uri!)), {
      typ: 'at+jwt',
      issuer: stack.issuer,
      audience,
      algorithms: ['ES256'],
    });

  const clientCredentials = async (
    client: oauth.Client,
    auth: oauth.ClientAuth,
    parameters: Record<string, string> = {},
  ) => {
    const response = await oauth.clientCredentialsGrantRequest(
      as,
      client,
      auth,
      new URLSearchParams(parameters),
      {
        [oauth.allowInsecureRequests]: true,
      },
    );
    return oauth.processClientCredentialsResponse(as, client, response);
  };

  it('discovers the server: metadata lists what exists', () => {
    expect(as).toMatchObject({
      issuer: stack.issuer,
      token_endpoint: `${stack.tokenUrl}/oauth2/token`,
      jwks_uri: `${stack.tokenUrl}/oauth2/jwks`,
      registration_endpoint: `${stack.registryUrl}/oauth2/register`,
      authorization_endpoint: `${stack.issuer}/oauth2/authorize`,
      grant_management_endpoint: `${stack.consentUrl}/oauth2/grants`,
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'client_credentials', 'refresh_token'],
      token_endpoint_auth_methods_supported: [
        'client_secret_basic',
        'client_secret_post',
        'private_key_jwt',
        'none',
      ],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
    });
    expect(as.scopes_supported).toEqual(expect.arrayContaining(['accounting.read', 'accounting.write']));
  });

  it('item 38: registers a client (RFC 7591), issues an RFC 9068 JWT to it (typ at+jwt, ES256, iss exp aud sub client_id iat jti), and the JWT verifies against the JWKS', async () => {
    const reg = await stack.register({
      client_name: 'Ledger Sync',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'accounting.read accounting.write',
      resources: [API],
    });
    expect(reg.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const result = await clientCredentials(
      { client_id: reg.client_id },
      oauth.ClientSecretBasic(reg.client_secret!),
      {
        scope: 'accounting.read',
      },
    );
    expect(result).toMatchObject({ token_type: 'bearer', expires_in: 600, scope: 'accounting.read' });
    const { payload, protectedHeader } = await verify(result.access_token);
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    expect(payload).toMatchObject({
      iss: stack.issuer,
      sub: reg.client_id,
      aud: API,
      client_id: reg.client_id,
      scope: 'accounting.read',
    });
    expect(payload.exp! - payload.iat!).toBe(600);
    expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{24}$/);

    // the issuance is an event (claims and jti, never the token), relayed to grantline.tokens.v1
    const { rows } = await stack.db.pool.query(
      `SELECT data FROM token.events WHERE type = 'AccessTokenIssued' AND data->>'jti' = $1`,
      [payload.jti],
    );
    expect(rows[0]?.data).toMatchObject({
      jti: payload.jti,
      clientId: reg.client_id,
      grantType: 'client_credentials',
      audience: [API],
    });
    expect(JSON.stringify(rows[0]?.data)).not.toContain(result.access_token.split('.')[2]);
    const onKafka = await readTopic(stack.token.runtime.bus as KafkaMessageBus, TOPICS.tokens, 1, 30_000);
    expect(onKafka.some((e) => (e.data as { jti: string }).jti === payload.jti)).toBe(true);
  });

  it('authenticates a private_key_jwt client (RFC 7523) and refuses a replayed assertion', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const reg = await stack.register({
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] },
      scope: 'accounting.read',
      resources: [API],
    });
    expect(reg.client_secret).toBeUndefined();
    const result = await clientCredentials(
      { client_id: reg.client_id },
      oauth.PrivateKeyJwt({ key: privateKey, kid: 'k1' }),
    );
    const { payload } = await verify(result.access_token);
    expect(payload).toMatchObject({ sub: reg.client_id, scope: 'accounting.read' });

    // the same assertion twice: the second is refused (single-use jti)
    const { SignJWT } = await import('jose');
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(reg.client_id)
      .setSubject(reg.client_id)
      .setAudience(stack.issuer)
      .setJti('assertion-1')
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(privateKey);
    const form = {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    };
    expect((await tokenRequest(stack, form)).status).toBe(200);
    const replay = await tokenRequest(stack, form);
    expect(replay.status).toBe(401);
    expect(replay.body).toEqual({
      error: 'invalid_client',
      error_description: 'client authentication failed',
    });

    // wrong audience, and an assertion signed by another key
    const other = await generateKeyPair('ES256');
    for (const [key, aud] of [
      [privateKey, 'https://elsewhere.example'],
      [other.privateKey, stack.issuer],
    ] as const) {
      const bad = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(reg.client_id)
        .setSubject(reg.client_id)
        .setAudience(aud)
        .setJti(crypto.randomUUID())
        .setIssuedAt()
        .setExpirationTime('60s')
        .sign(key);
      expect((await tokenRequest(stack, { ...form, client_assertion: bad })).status).toBe(401);
    }
  });

  it('authenticates a private_key_jwt client whose keys are published at a jwks_uri', async () => {
    const { createServer } = await import('node:http');
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwks = JSON.stringify({
      keys: [{ ...(await exportJWK(publicKey)), kid: 'remote-1', alg: 'ES256' }],
    });
    const server = createServer((_req, res) => res.setHeader('content-type', 'application/json').end(jwks));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const { port } = server.address() as { port: number };
      const reg = await stack.register({
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks_uri: `http://127.0.0.1:${port}/jwks.json`,
        scope: 'accounting.read',
      });
      const result = await clientCredentials(
        { client_id: reg.client_id },
        oauth.PrivateKeyJwt({ key: privateKey, kid: 'remote-1' }),
      );
      expect(decodeJwt(result.access_token)).toMatchObject({ sub: reg.client_id, client_id: reg.client_id });
    } finally {
      server.close();
    }
  });

  it('rotates signing keys: the new key is published first, old tokens still verify, new ones use the new kid', async () => {
    const reg = await stack.register({
      grant_types: ['client_credentials'],
      scope: 'accounting.read',
      resources: [API],
    });
    const auth = oauth.ClientSecretBasic(reg.client_secret!);
    const before = await clientCredentials({ client_id: reg.client_id }, auth);
    const oldKid = decodeProtectedHeader(before.access_token).kid;

    const rotated = await fetch(`${stack.tokenManagementUrl}/admin/keys/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(rotated.status).toBe(201);
    const { kid: newKid, activates_at } = (await rotated.json()) as { kid: string; activates_at: string };
    const jwks = (await (await fetch(as.jwks_uri!)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, newKid]));
    expect(jwks.keys.every((k: Record<string, unknown>) => !('d' in k))).toBe(true);
    expect(Date.parse(activates_at) - clock.now()).toBeGreaterThan(290_000);
    // published, not yet signing
    const during = await clientCredentials({ client_id: reg.client_id }, auth);
    expect(decodeProtectedHeader(during.access_token).kid).toBe(oldKid);

    clock.advance(Date.parse(activates_at) - clock.now() + 100);
    const after = await clientCredentials({ client_id: reg.client_id }, auth);
    expect(decodeProtectedHeader(after.access_token).kid).toBe(newKid);
    await expect(verify(before.access_token)).resolves.toBeDefined();
    await expect(verify(after.access_token)).resolves.toBeDefined();
  });

  it('makes a newly registered client usable within 1 s (p99 of 20 registrations)', async () => {
    const delays: number[] = [];
    const initialAccessToken = await stack.initialAccessToken();
    for (let i = 0; i < 20; i++) {
      const started = Date.now();
      const res = await fetch(`${stack.registryUrl}/oauth2/register`, {
        method: 'POST',
        headers: { authorization: `Bearer ${initialAccessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ grant_types: ['client_credentials'], scope: 'accounting.read' }),
      });
      const reg = (await res.json()) as { client_id: string; client_secret: string };
      for (;;) {
        const r = await tokenRequest(
          stack,
          { grant_type: 'client_credentials' },
          { authorization: basic(reg.client_id, reg.client_secret) },
        );
        if (r.status === 200) break;
        if (Date.now() - started > 5_000)
          throw new Error(`client not usable after 5 s: ${JSON.stringify(r.body)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      delays.push(Date.now() - started);
    }
    delays.sort((a, b) => a - b);
    console.log(`registration -> usable: p50 ${delays[9]} ms, max ${delays[19]} ms`);
    expect(delays[19]).toBeLessThan(1_000);
  });
});
