import { offsetClock } from '@grantline/clock';
import { eventually } from '@grantline/testing';
import { createLocalJWKSet, decodeJwt, type JWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { refresh, type Tenant } from './flow.ts';
import {
  API,
  type Client,
  connector,
  introspector,
  startIntrospectionStack,
} from './introspection-fixture.ts';
import type { Stack } from './stack.ts';

/**
 * RFC 7662 introspection through the one origin: who may introspect, and what an active and an
 * inactive token look like (RFC 9701 JWT answers included). Revocations: introspection-revocation.
 */
describe('introspection (RFC 7662): who may see a token, and what it says', () => {
  const clock = offsetClock();
  let stack: Stack;
  let tenant: Tenant;
  let rs: Client;
  let otherRs: Client;
  let otherApp: Client;
  beforeAll(async () => {
    ({ stack, tenant, rs, otherRs, otherApp } = await startIntrospectionStack(inject('infra'), clock));
  }, 120_000);
  afterAll(() => stack?.stop());
  const introspect = introspector(() => stack);
  const connect = connector(
    () => stack,
    () => tenant,
  );

  it('lists the introspection endpoint and its authentication methods in the metadata', async () => {
    const meta = await (await fetch(`${stack.issuer}/.well-known/oauth-authorization-server`)).json();
    expect(meta).toMatchObject({
      introspection_endpoint: `${stack.issuer}/oauth2/introspect`,
      introspection_endpoint_auth_methods_supported: [
        'client_secret_basic',
        'client_secret_post',
        'private_key_jwt',
      ],
      introspection_signing_alg_values_supported: ['ES256'],
    });
  });

  it('item 36: an unauthenticated caller, a wrong secret and a public client get 401', async () => {
    const { access_token } = await connect();
    const none = await introspect(undefined, { token: access_token });
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ error: 'invalid_client' });
    const wrong = await introspect(
      { client_id: rs.client_id, client_secret: 'not-the-secret' },
      { token: access_token },
    );
    expect(wrong.status).toBe(401);
    const pub = await stack.register({
      client_name: 'Public app',
      redirect_uris: ['http://127.0.0.1:9999/cb'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'none',
    });
    await eventually(
      async () =>
        (
          await stack.db.pool.query('SELECT 1 FROM introspection.clients WHERE client_id = $1', [
            pub.client_id,
          ])
        ).rowCount
          ? true
          : undefined,
      { what: 'the public client' },
    );
    const publicCaller = await introspect({ client_id: pub.client_id }, { token: access_token });
    expect(publicCaller.status).toBe(401);
    expect(publicCaller.body).toMatchObject({ error: 'invalid_client' });
  });

  it('item 36 / item 40: an access token is active for its client and a resource server of its audience, and {"active":false} alone for another audience, unknown or malformed tokens', async () => {
    const tokens = await connect();
    const claims = decodeJwt(tokens.access_token);
    for (const caller of [tenant.client, rs]) {
      const res = await introspect(caller, { token: tokens.access_token, token_type_hint: 'access_token' });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.body).toEqual({
        active: true,
        token_type: 'Bearer',
        client_id: tenant.client.client_id,
        sub: tenant.user.id,
        scope: 'invoices.read invoices.write',
        aud: API,
        iss: stack.issuer,
        exp: claims.exp,
        iat: claims.iat,
        jti: claims.jti,
        grant_id: tokens.grant_id,
        organisations: tenant.organisations.slice(0, 2).map((o) => o.id),
      });
    }
    // another audience's resource server, or another app of the same audience: nothing
    expect((await introspect(otherApp, { token: tokens.access_token })).body).toEqual({ active: false });
    for (const token of [tokens.access_token, 'unknown-token', `${tokens.access_token.slice(0, -4)}AAAA`]) {
      const res = await introspect(otherRs, { token });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ active: false });
    }
    expect((await introspect(rs, {})).body).toMatchObject({ error: 'invalid_request' });
  });

  it('item 36: a client cannot make itself a resource server; only the admin API grants (and takes back) the role', async () => {
    const tokens = await connect();
    // registered through RFC 7591 as a resource server would be, even naming the role: none of it counts
    const self = (await stack.register({
      client_name: 'Self-declared API',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      resources: [API],
      resource_server: true,
      served_resources: [API],
    })) as Client;
    const known = () =>
      stack.db.pool.query<{ served: string[] }>(
        'SELECT served_resources AS served FROM introspection.clients WHERE client_id = $1',
        [self.client_id],
      );
    await eventually(async () => ((await known()).rowCount ? true : undefined), {
      what: 'introspection to know the client',
    });
    const stream = async () => {
      const res = await fetch(`${stack.issuer}/oauth2/revocations/stream`, {
        headers: { authorization: `Basic ${btoa(`${self.client_id}:${self.client_secret}`)}` },
        signal: AbortSignal.timeout(5_000),
      });
      await res.body?.cancel();
      return res.status;
    };
    // its own tokens are its business (RFC 7662); a user's token for the API is not: {"active":false},
    // as for any token it may not see, so the answer says nothing about the token
    expect((await introspect(self, { token: tokens.access_token })).body).toEqual({ active: false });
    expect(await stream()).toBe(401);

    const admin = (method: string, body?: unknown) =>
      stack.admin(`/clients/${self.client_id}/resource-server`, body, method);
    const granted = await admin('PUT', { resources: [API] });
    expect(granted.status).toBe(200);
    expect(await granted.json()).toEqual({ client_id: self.client_id, resources: [API] });
    await eventually(async () => ((await known()).rows[0]?.served.length ? true : undefined), {
      what: 'introspection to see the role',
    });
    expect((await introspect(self, { token: tokens.access_token })).body).toMatchObject({ active: true });
    expect(await stream()).toBe(200);

    expect((await admin('DELETE')).status).toBe(204);
    await eventually(async () => ((await known()).rows[0]?.served.length === 0 ? true : undefined), {
      what: 'introspection to see the role taken back',
    });
    expect((await introspect(self, { token: tokens.access_token })).body).toEqual({ active: false });
    expect(await stream()).toBe(401);

    // RFC 7807 refusals: an app that signs users in, bad input, an unknown client, no admin token
    const app = await stack.admin(
      `/clients/${otherApp.client_id}/resource-server`,
      { resources: [API] },
      'PUT',
    );
    expect(app.status).toBe(409);
    expect(app.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    for (const body of [{}, { resources: [] }, { resources: ['not a url'] }, { resources: [`${API}#x`] }])
      expect((await admin('PUT', body)).status).toBe(400);
    expect((await stack.admin('/clients/nobody/resource-server', { resources: [API] }, 'PUT')).status).toBe(
      404,
    );
    const anonymous = await fetch(
      `${stack.registryManagementUrl}/admin/clients/${self.client_id}/resource-server`,
      {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ resources: [API] }),
      },
    );
    expect(anonymous.status).toBe(401);
  });

  it('a refresh token is active for its own client only, until it is rotated', async () => {
    const tokens = await connect();
    const active = await eventually(
      async () => {
        const res = await introspect(tenant.client, {
          token: tokens.refresh_token,
          token_type_hint: 'refresh_token',
        });
        return res.body.active ? res.body : undefined;
      },
      { what: 'the refresh token family to be projected' },
    );
    expect(active).toMatchObject({
      active: true,
      token_type: 'refresh_token',
      client_id: tenant.client.client_id,
      sub: tenant.user.id,
      grant_id: tokens.grant_id,
      organisations: tenant.organisations.slice(0, 2).map((o) => o.id),
    });
    expect((await introspect(rs, { token: tokens.refresh_token })).body).toEqual({ active: false });
    const rotated = await refresh(stack, tenant, tokens.refresh_token);
    expect(rotated.status).toBe(200);
    await eventually(
      async () =>
        (await introspect(tenant.client, { token: tokens.refresh_token })).body.active ? undefined : true,
      { what: 'the rotation to be projected' },
    );
    expect((await introspect(tenant.client, { token: tokens.refresh_token })).body).toEqual({
      active: false,
    });
    expect(
      (await introspect(tenant.client, { token: rotated.body.refresh_token as string })).body.active,
    ).toBe(true);
  });

  it('RFC 9701: asked for application/token-introspection+jwt, it answers a JWT signed with a key of its JWKS', async () => {
    const tokens = await connect();
    const res = await introspect(
      rs,
      { token: tokens.access_token },
      { accept: 'application/token-introspection+jwt' },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/token-introspection\+jwt/);
    const jwks = (await (await fetch(`${stack.issuer}/oauth2/introspection/jwks`)).json()) as {
      keys: JWK[];
    };
    const { payload, protectedHeader } = await jwtVerify(res.text, createLocalJWKSet(jwks), {
      issuer: stack.issuer,
      audience: rs.client_id,
      typ: 'token-introspection+jwt',
      algorithms: ['ES256'],
      currentDate: new Date(clock.now()),
    });
    expect(protectedHeader.kid).toBe(jwks.keys[0]!.kid);
    expect(payload.token_introspection).toMatchObject({
      active: true,
      jti: decodeJwt(tokens.access_token).jti,
    });
  });

  it('item 36: an expired access token is {"active":false}', async () => {
    const tokens = await connect();
    expect((await introspect(rs, { token: tokens.access_token })).body.active).toBe(true);
    clock.advance(700_000);
    try {
      expect((await introspect(rs, { token: tokens.access_token })).body).toEqual({ active: false });
    } finally {
      clock.advance(-700_000);
    }
  });
});
