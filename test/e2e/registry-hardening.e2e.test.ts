import { eventually } from '@grantline/testing';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADMIN_TOKEN, basic, type Stack, startStack, tokenRequest } from './stack.ts';

const API = 'https://api.example.com/ledger';

describe('registry hardening: what a client may change about itself, and who may register', () => {
  let stack: Stack;
  beforeAll(async () => {
    // polling the token endpoint until a change arrives must not trip the brute-force limit
    stack = await startStack(inject('infra'), { CLIENT_AUTH_FAILURES_PER_MINUTE: '1000' });
    await stack.defineScopes({ 'ledger.read': 'Read the ledger', 'ledger.write': 'Change the ledger' });
  });
  afterAll(() => stack?.stop());

  /** RFC 7592 update with the client's own registration access token */
  const selfUpdate = async (reg: Record<string, string>, metadata: Record<string, unknown>) => {
    const res = await fetch(reg.registration_client_uri!, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${reg.registration_access_token}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ client_id: reg.client_id, ...metadata }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  const codeClient = {
    redirect_uris: ['https://ledger.example/cb'],
    grant_types: ['authorization_code'],
    scope: 'ledger.read',
  };

  const jwtClient = async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    const metadata = {
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [jwk] },
      scope: 'ledger.read',
      resources: [API],
    };
    return { reg: await stack.register(metadata), metadata, privateKey };
  };

  const assertionGrant = async (clientId: string, key: Parameters<SignJWT['sign']>[0], kid: string) => ({
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(stack.issuer)
      .setJti(crypto.randomUUID())
      .setIssuedAt()
      .setExpirationTime('60s')
      .sign(key),
  });

  /** polls the token endpoint until the request gets `status` (a change takes a moment to arrive) */
  const eventuallyToken = (
    form: () => Promise<Record<string, string>> | Record<string, string>,
    status: number,
    headers: Record<string, string> = {},
  ) =>
    eventually(
      async () => {
        const res = await tokenRequest(stack, await form(), headers);
        return res.status === status ? res : undefined;
      },
      { what: `a ${status} from the token endpoint` },
    );

  it('finding 2: a client cannot add a grant type through RFC 7592', async () => {
    const reg = await stack.register(codeClient);
    const widened = await selfUpdate(reg, {
      ...codeClient,
      grant_types: ['authorization_code', 'refresh_token'],
    });
    expect(widened).toEqual({
      status: 400,
      body: {
        error: 'invalid_client_metadata',
        error_description: 'grant_types may only be narrowed by an update',
      },
    });
    const read = await fetch(reg.registration_client_uri!, {
      headers: { authorization: `Bearer ${reg.registration_access_token}` },
    });
    expect(await read.json()).toMatchObject({ grant_types: ['authorization_code'] });
  });

  it('finding 2: a client cannot become public or move between secret and key-based authentication', async () => {
    const refused = {
      status: 400,
      body: {
        error: 'invalid_client_metadata',
        error_description:
          'token_endpoint_auth_method may only change between client_secret_basic and client_secret_post',
      },
    };
    const secretClient = await stack.register(codeClient);
    expect(await selfUpdate(secretClient, { ...codeClient, token_endpoint_auth_method: 'none' })).toEqual(
      refused,
    );
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    expect(
      await selfUpdate(secretClient, {
        ...codeClient,
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [await exportJWK(publicKey)] },
      }),
    ).toEqual(refused);
    const { reg, metadata } = await jwtClient();
    expect(await selfUpdate(reg, { ...metadata, token_endpoint_auth_method: 'client_secret_basic' })).toEqual(
      refused,
    );
    const publicClient = await stack.register({ ...codeClient, token_endpoint_auth_method: 'none' });
    expect(
      await selfUpdate(publicClient, { ...codeClient, token_endpoint_auth_method: 'client_secret_post' }),
    ).toEqual(refused);
  });

  it('finding 2: a client narrows its grant types, rotates its keys and switches secret method; responses carry its registration access token', async () => {
    const reg = await stack.register({ ...codeClient, grant_types: ['authorization_code', 'refresh_token'] });
    const narrowed = await selfUpdate(reg, {
      ...codeClient,
      client_name: 'Ledger',
      contacts: ['ops@ledger.example'],
    });
    expect(narrowed.status).toBe(200);
    expect(narrowed.body).toMatchObject({
      client_id: reg.client_id,
      grant_types: ['authorization_code'],
      client_name: 'Ledger',
      registration_access_token: reg.registration_access_token,
      registration_client_uri: reg.registration_client_uri,
    });
    const read = await fetch(reg.registration_client_uri!, {
      headers: { authorization: `Bearer ${reg.registration_access_token}` },
    });
    expect(await read.json()).toMatchObject({ registration_access_token: reg.registration_access_token });

    // key rotation: the new key authenticates, the old one no longer does
    const { reg: jwt, metadata, privateKey } = await jwtClient();
    const next = await generateKeyPair('ES256', { extractable: true });
    const rotated = await selfUpdate(jwt, {
      ...metadata,
      jwks: { keys: [{ ...(await exportJWK(next.publicKey)), kid: 'k2', alg: 'ES256' }] },
    });
    expect(rotated.status).toBe(200);
    await eventuallyToken(() => assertionGrant(jwt.client_id, next.privateKey, 'k2'), 200);
    expect((await tokenRequest(stack, await assertionGrant(jwt.client_id, privateKey, 'k1'))).status).toBe(
      401,
    );

    // between the two secret methods the secret stays
    const cc = { grant_types: ['client_credentials'], scope: 'ledger.read', resources: [API] };
    const secret = await stack.register(cc);
    const post = await selfUpdate(secret, { ...cc, token_endpoint_auth_method: 'client_secret_post' });
    expect(post.status).toBe(200);
    expect(post.body).not.toHaveProperty('client_secret');
    await eventuallyToken(
      () => ({
        grant_type: 'client_credentials',
        client_id: secret.client_id,
        client_secret: secret.client_secret!,
      }),
      200,
    );
  });

  it('finding 2: an administrator can widen a client, the event says so, and a client moved onto a secret gets a new one', async () => {
    const reg = await stack.register(codeClient);
    const widened = await stack.admin(
      `/clients/${reg.client_id}`,
      {
        ...codeClient,
        grant_types: ['authorization_code', 'refresh_token'],
        scope: 'ledger.read ledger.write',
      },
      'PUT',
    );
    expect(widened.status).toBe(200);
    expect(await widened.json()).toMatchObject({
      client_id: reg.client_id,
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'ledger.read ledger.write',
    });

    const { reg: jwt, metadata } = await jwtClient();
    const moved = await stack.admin(
      `/clients/${jwt.client_id}`,
      { ...metadata, token_endpoint_auth_method: 'client_secret_basic', jwks: undefined },
      'PUT',
    );
    expect(moved.status).toBe(200);
    const body = (await moved.json()) as Record<string, string>;
    expect(body).toMatchObject({
      token_endpoint_auth_method: 'client_secret_basic',
      client_secret_expires_at: 0,
    });
    expect(body.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const { rows } = await stack.db.pool.query(
      `SELECT type, data FROM registry.events WHERE stream_id = $1 ORDER BY stream_version`,
      [`client-${jwt.client_id}`],
    );
    expect(rows.map((r) => [r.type, r.data.by])).toEqual([
      ['ClientRegistered', undefined],
      ['ClientMetadataUpdated', 'admin'],
      ['ClientSecretRotated', undefined],
    ]);
    expect(JSON.stringify(rows)).not.toContain(body.client_secret);
    // the token service learns the new secret's digest
    await eventuallyToken(() => ({ grant_type: 'client_credentials' }), 200, {
      authorization: basic(jwt.client_id, body.client_secret!),
    });

    const bad = await stack.admin(`/clients/${reg.client_id}`, { grant_types: ['password'] }, 'PUT');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      title: 'Bad Request',
      detail: 'grant_type password is not supported',
      error: 'invalid_client_metadata',
    });
    expect((await stack.admin('/clients/cl_nobody', codeClient, 'PUT')).status).toBe(404);
  });

  const registerWith = (token: string) =>
    fetch(`${stack.registryUrl}/oauth2/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ grant_types: ['client_credentials'], scope: 'ledger.read' }),
    });

  it('finding 6: the admin token is not an initial access token (401 at /oauth2/register)', async () => {
    const res = await registerWith(ADMIN_TOKEN);
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      error: 'invalid_token',
      error_description: 'initial access token required',
    });
  });

  it('finding 6: an initial access token registers clients until it is revoked on its own, then gets 401', async () => {
    const issue = async (description: string) => {
      const res = await stack.admin('/initial-access-tokens', { description });
      expect(res.status).toBe(201);
      expect(res.headers.get('cache-control')).toBe('no-store');
      return (await res.json()) as { id: string; initial_access_token: string };
    };
    const partner = await issue('partner onboarding');
    const other = await issue('internal apps');
    expect(partner.initial_access_token).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const registered = await registerWith(partner.initial_access_token);
    expect(registered.status).toBe(201);
    const { client_id } = (await registered.json()) as { client_id: string };
    const { rows } = await stack.db.pool.query(
      `SELECT type, data FROM registry.events WHERE stream_id IN ($1, 'initial-access-tokens') ORDER BY position`,
      [`client-${client_id}`],
    );
    expect(rows.find((r) => r.type === 'ClientRegistered')?.data.initialAccessTokenId).toBe(partner.id);
    expect(rows.find((r) => r.data.tokenId === partner.id)?.data.tokenDigest).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(rows)).not.toContain(partner.initial_access_token);

    expect((await stack.admin(`/initial-access-tokens/${partner.id}`, undefined, 'DELETE')).status).toBe(204);
    const refused = await registerWith(partner.initial_access_token);
    expect(refused.status).toBe(401);
    expect((await registerWith(other.initial_access_token)).status).toBe(201);

    const listed = await stack.admin('/initial-access-tokens', undefined, 'GET');
    const text = await listed.text();
    expect(text).not.toContain(partner.initial_access_token);
    expect(text).not.toContain(other.initial_access_token);
    const { initial_access_tokens } = JSON.parse(text) as {
      initial_access_tokens: Record<string, unknown>[];
    };
    expect(initial_access_tokens).toEqual(
      expect.arrayContaining([
        {
          id: partner.id,
          description: 'partner onboarding',
          issued_at: expect.any(Number),
          status: 'revoked',
        },
        { id: other.id, description: 'internal apps', issued_at: expect.any(Number), status: 'active' },
      ]),
    );
    expect((await stack.admin('/initial-access-tokens/iat_nobody', undefined, 'DELETE')).status).toBe(404);
  });

  it('finding 6: /admin and /metrics are 404 on the public port and served on the management port', async () => {
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    // the one public origin (the gateway), and behind it the registry's and the token service's own listeners
    for (const [registryUrl, tokenUrl] of [
      [stack.registryUrl, stack.tokenUrl],
      [stack.directUrls.registry, stack.directUrls.token],
    ]) {
      for (const [url, init] of [
        [`${registryUrl}/admin/organisations`, { method: 'POST', headers: admin, body: '{"name":"x"}' }],
        [`${registryUrl}/admin/initial-access-tokens`, { headers: admin }],
        [`${tokenUrl}/admin/keys/rotate`, { method: 'POST', headers: admin }],
        [`${registryUrl}/metrics`, {}],
        [`${tokenUrl}/metrics`, {}],
      ] as const) {
        expect((await fetch(url, init)).status, url).toBe(404);
      }
    }
    expect(
      (await fetch(`${stack.registryManagementUrl}/admin/initial-access-tokens`, { headers: admin })).status,
    ).toBe(200);
    for (const url of [stack.registryManagementUrl, stack.tokenManagementUrl]) {
      const metrics = await fetch(`${url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^# (HELP|TYPE) /m);
    }
  });

  it('finding 6: the public /readyz says ready or not and names nothing internal; the management port details it', async () => {
    // the one public origin (the gateway), and behind it each service's own public listener
    for (const url of [stack.issuer, ...Object.values(stack.directUrls)]) {
      const res = await fetch(`${url}/readyz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ready' });
    }
    const detailed = await fetch(`${stack.tokenManagementUrl}/readyz`);
    expect(await detailed.json()).toMatchObject({
      status: 'ready',
      checks: { postgres: 'ok', redis: 'ok' },
    });
  });
});
