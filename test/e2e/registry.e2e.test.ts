import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADMIN_TOKEN, type Stack, startStack } from './stack.ts';

describe('registry: RFC 7591/7592 registration and the admin API', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    await stack.defineScopes({ 'invoices.read': 'Read invoices', 'invoices.write': 'Create invoices' });
  });
  afterAll(() => stack?.stop());

  const register = async (body: unknown, token?: string) =>
    fetch(`${stack.registryUrl}/oauth2/register`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token ?? (await stack.initialAccessToken())}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    });

  it('requires the initial access token', async () => {
    const res = await register({ grant_types: ['client_credentials'] }, 'wrong');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    expect(await res.json()).toEqual({
      error: 'invalid_token',
      error_description: 'initial access token required',
    });
  });

  it('registers a web client with defaults and returns its metadata, secret and registration token once', async () => {
    const res = await register({
      client_name: 'Books',
      redirect_uris: ['https://books.example/cb'],
      scope: 'invoices.read',
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      client_name: 'Books',
      redirect_uris: ['https://books.example/cb'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'invoices.read',
      client_secret_expires_at: 0,
      registration_client_uri: `${stack.registryUrl}/oauth2/register/${body.client_id}`,
    });
    expect(body.registration_access_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it.each([
    [
      { redirect_uris: ['http://books.example/cb'] },
      'invalid_redirect_uri',
      'redirect_uris must use https (http only for loopback native clients)',
    ],
    [
      { redirect_uris: ['https://books.example/cb#frag'] },
      'invalid_redirect_uri',
      'redirect_uris must not have a fragment',
    ],
    [{ redirect_uris: ['/cb'] }, 'invalid_redirect_uri', 'redirect_uris must be an absolute URI'],
    [
      { grant_types: ['authorization_code'] },
      'invalid_redirect_uri',
      'redirect_uris is required for authorization_code',
    ],
    [{ grant_types: ['password'] }, 'invalid_client_metadata', 'grant_type password is not supported'],
    [
      { grant_types: ['implicit'], response_types: ['token'] },
      'invalid_client_metadata',
      'grant_type implicit is not supported',
    ],
    [
      { grant_types: ['client_credentials'], scope: 'invoices.delete' },
      'invalid_client_metadata',
      'scope not defined: invoices.delete',
    ],
    [
      { grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt' },
      'invalid_client_metadata',
      'private_key_jwt requires jwks or jwks_uri',
    ],
    [
      {
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [{ kty: 'EC', d: 'secret' }] },
      },
      'invalid_client_metadata',
      'jwks must hold public keys only',
    ],
    [
      { grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_jwt' },
      'invalid_client_metadata',
      'token_endpoint_auth_method client_secret_jwt is not supported',
    ],
    [
      { grant_types: ['client_credentials'], logo_uri: 'http://books.example/logo.png' },
      'invalid_client_metadata',
      'logo_uri must use https',
    ],
    [[1], 'invalid_client_metadata', 'the request body must be a JSON object'],
    ['not an object', 'invalid_request', 'malformed request body'],
  ])('refuses bad metadata %j with %s', async (metadata, error, description) => {
    const res = await register(metadata);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error, error_description: description });
  });

  it('allows http redirect URIs for loopback native clients', async () => {
    const res = await register({
      redirect_uris: ['http://127.0.0.1/callback'],
      token_endpoint_auth_method: 'none',
    });
    expect(res.status).toBe(201);
    expect((await res.json()) as object).not.toHaveProperty('client_secret');
  });

  it('reads, updates (narrowing only) and deletes a client with its registration token (RFC 7592)', async () => {
    const reg = (await (
      await register({ grant_types: ['client_credentials'], scope: 'invoices.read invoices.write' })
    ).json()) as Record<string, string>;
    const uri = reg.registration_client_uri!;
    const as = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
    expect((await fetch(uri, { headers: as('wrong') })).status).toBe(401);
    const read = await fetch(uri, { headers: as(reg.registration_access_token!) });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({
      client_id: reg.client_id,
      scope: 'invoices.read invoices.write',
    });

    const narrowed = await fetch(uri, {
      method: 'PUT',
      headers: as(reg.registration_access_token!),
      body: JSON.stringify({
        client_id: reg.client_id,
        grant_types: ['client_credentials'],
        scope: 'invoices.read',
        client_name: 'Renamed',
      }),
    });
    expect(narrowed.status).toBe(200);
    expect(await narrowed.json()).toMatchObject({ scope: 'invoices.read', client_name: 'Renamed' });
    const widened = await fetch(uri, {
      method: 'PUT',
      headers: as(reg.registration_access_token!),
      body: JSON.stringify({
        client_id: reg.client_id,
        grant_types: ['client_credentials'],
        scope: 'invoices.read invoices.write',
      }),
    });
    expect(widened.status).toBe(400);
    expect(await widened.json()).toEqual({
      error: 'invalid_client_metadata',
      error_description: 'scope and resources may only be narrowed by an update',
    });

    expect((await fetch(uri, { method: 'DELETE', headers: as(reg.registration_access_token!) })).status).toBe(
      204,
    );
    expect((await fetch(uri, { headers: as(reg.registration_access_token!) })).status).toBe(401);
  });

  it('answers admin calls without the admin token with an RFC 7807 401', async () => {
    const res = await fetch(`${stack.registryManagementUrl}/admin/organisations`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(await res.json()).toEqual({
      type: 'about:blank',
      title: 'Unauthorized',
      status: 401,
      detail: 'a valid admin bearer token is required',
    });
  });

  it('manages organisations, users and memberships, with problem details for bad input', async () => {
    const acme = (await (await stack.admin('/organisations', { name: 'Acme Ltd' })).json()) as { id: string };
    const globex = (await (await stack.admin('/organisations', { name: 'Globex' })).json()) as { id: string };
    expect(acme.id).toMatch(/^org_/);

    const user = await stack.admin('/users', {
      username: 'alice',
      password: 'correct horse battery',
      organisations: [acme.id],
    });
    expect(user.status).toBe(201);
    const alice = (await user.json()) as { id: string; organisations: string[] };
    expect(alice.organisations).toEqual([acme.id]);

    const taken = await stack.admin('/users', {
      username: 'Alice',
      password: 'another password',
      organisations: [],
    });
    expect(taken.status).toBe(409);
    expect(await taken.json()).toMatchObject({ title: 'Conflict', detail: 'username is taken' });

    const badBody = await stack.admin('/users', {
      username: 'bob',
      password: 'short',
      organisations: ['org_missing'],
    });
    expect(badBody.status).toBe(400);
    expect(((await badBody.json()) as { detail: string }).detail).toMatch(/^password: /);
    const unknownOrg = await stack.admin('/users', {
      username: 'bob',
      password: 'long enough password',
      organisations: ['org_missing'],
    });
    expect(await unknownOrg.json()).toMatchObject({
      status: 400,
      detail: 'organisations: unknown organisation org_missing',
    });

    expect(
      (await stack.admin(`/users/${alice.id}/organisations`, { organisation_id: globex.id })).status,
    ).toBe(204);
    expect(
      (await stack.admin(`/users/${alice.id}/organisations/${acme.id}`, undefined, 'DELETE')).status,
    ).toBe(204);
    expect((await stack.admin(`/users/${alice.id}/disable`, {})).status).toBe(204);
    expect((await stack.admin('/users/usr_nobody/disable', {})).status).toBe(404);

    const { rows } = await stack.db.pool.query(
      `SELECT type, data FROM registry.events WHERE stream_id = $1 ORDER BY stream_version`,
      [`user-${alice.id}`],
    );
    expect(rows.map((r) => r.type)).toEqual([
      'UserCreated',
      'UserAddedToOrganisation',
      'UserRemovedFromOrganisation',
      'UserDisabled',
    ]);
    // the hash travels sealed to the authorization service (finding 11)
    expect(rows[0].data.passwordHash).toBeUndefined();
    expect(rows[0].data.sealedPasswordHash).toMatch(/^eyJ[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(JSON.stringify(rows)).not.toContain('correct horse battery');
  });

  it('answers malformed JSON and oversized bodies with problems, not 500s', async () => {
    const malformed = await fetch(`${stack.registryManagementUrl}/admin/organisations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: '{"name":',
    });
    expect(malformed.status).toBe(400);
    const big = await stack.admin('/scopes', { name: 'x', description: 'y'.repeat(100_000) });
    expect(big.status).toBe(413);
    const badRegistration = await fetch(`${stack.registryUrl}/oauth2/register`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await stack.initialAccessToken()}`,
        'content-type': 'application/json',
      },
      body: '[1,',
    });
    expect(badRegistration.status).toBe(400);
    expect(((await badRegistration.json()) as { error: string }).error).toBe('invalid_request');
  });
});
