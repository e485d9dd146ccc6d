import { randomBytes } from 'node:crypto';
import { offsetClock } from '@grantline/clock';
import { eventually } from '@grantline/testing';
import { createLocalJWKSet, decodeJwt, type JWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Agent, createTenant, redeem, refresh, runFlow, type Tenant } from './flow.ts';
import { ADMIN_TOKEN, basic, type Stack, startStack } from './stack.ts';

const API = 'https://invoices.example/';

interface StreamEvent {
  id?: string | undefined;
  event: string;
  data: { key?: string; sequence?: number; time?: string; kind?: string; grantId?: string };
}
const OTHER_API = 'https://payroll.example/';

/**
 * RFC 7662 introspection and the revocation stream, through the one origin: who may introspect,
 * what an active and an inactive token look like, revocations taking effect, RFC 9701 responses.
 */
describe('introspection (RFC 7662) and the revocation stream', () => {
  const clock = offsetClock();
  let stack: Stack;
  let tenant: Tenant;
  let rs: { client_id: string; client_secret: string };
  let otherRs: { client_id: string; client_secret: string };
  /** an app that signs users in and may ask tokens for the API: not its resource server */
  let otherApp: { client_id: string; client_secret: string };
  beforeAll(async () => {
    stack = await startStack(inject('infra'), {}, { clock });
    tenant = await createTenant(stack, { resources: [API] });
    const resourceServer = (resources: string[]) =>
      stack.register({
        client_name: `Invoices API ${randomBytes(3).toString('hex')}`,
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
        resources,
      }) as Promise<{ client_id: string; client_secret: string }>;
    rs = await resourceServer([API]);
    otherRs = await resourceServer([OTHER_API]);
    otherApp = (await stack.register({
      client_name: 'Another app',
      redirect_uris: ['https://other.example/cb'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
      resources: [API],
    })) as { client_id: string; client_secret: string };
    await eventually(
      async () => {
        const { rowCount } = await stack.db.pool.query(
          'SELECT 1 FROM introspection.clients WHERE client_id = ANY($1)',
          [[tenant.client.client_id, rs.client_id, otherRs.client_id, otherApp.client_id]],
        );
        return rowCount === 4 ? true : undefined;
      },
      { what: 'the introspection service to know the clients' },
    );
  }, 120_000);
  afterAll(() => stack?.stop());

  const introspect = async (
    caller: { client_id: string; client_secret?: string } | undefined,
    form: Record<string, string>,
    headers: Record<string, string> = {},
  ) => {
    const res = await fetch(`${stack.issuer}/oauth2/introspect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(caller?.client_secret && { authorization: basic(caller.client_id, caller.client_secret) }),
        ...headers,
      },
      body: new URLSearchParams({
        ...(caller && !caller.client_secret && { client_id: caller.client_id }),
        ...form,
      }),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      text,
      body: text.startsWith('{') ? JSON.parse(text) : text,
    };
  };

  const connect = async (organisations = tenant.organisations.slice(0, 2).map((o) => o.id)) => {
    const flow = await runFlow(stack, tenant, {
      organisations,
      params: { grant_management_action: 'create' },
    });
    const tokens = await redeem(stack, tenant, flow.code!, flow.verifier);
    expect(tokens.status).toBe(200);
    return tokens.body as { access_token: string; refresh_token: string; grant_id: string };
  };

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

  it('item 35: a disconnected organisation leaves the others listed; a revoked grant makes its tokens inactive at once', async () => {
    const tokens = await connect();
    const [acme, globex] = tenant.organisations;
    // Grant Management replace with one organisation fewer: OrganisationDisconnected for Globex
    const replace = await runFlow(stack, tenant, {
      organisations: [acme!.id],
      params: { grant_management_action: 'replace', grant_id: tokens.grant_id },
    });
    expect((await redeem(stack, tenant, replace.code!, replace.verifier)).status).toBe(200);
    const narrowed = await eventually(
      async () => {
        const res = await introspect(rs, { token: tokens.access_token });
        return res.body.organisations?.length === 1 ? res.body : undefined;
      },
      { what: 'the disconnection to reach introspection' },
    );
    expect(narrowed).toMatchObject({ active: true, organisations: [acme!.id] });
    expect(narrowed.organisations).not.toContain(globex!.id);

    const del = await fetch(`${stack.consentUrl}/oauth2/grants/${tokens.grant_id}`, {
      method: 'DELETE',
      headers: { authorization: basic(tenant.client.client_id, tenant.client.client_secret!) },
    });
    expect(del.status).toBe(204);
    const sent = Date.now();
    await eventually(
      async () => ((await introspect(rs, { token: tokens.access_token })).body.active ? undefined : true),
      { what: 'the revoked grant to introspect inactive', intervalMs: 10 },
    );
    expect(Date.now() - sent).toBeLessThan(5_000);
    expect((await introspect(rs, { token: tokens.access_token })).body).toEqual({ active: false });
    expect((await introspect(tenant.client, { token: tokens.refresh_token })).body).toEqual({
      active: false,
    });
  });

  it('item 35: disconnecting on /account/connections (an organisation, then the app) reaches introspection', async () => {
    const agent = new Agent();
    const [acme, globex] = tenant.organisations;
    const flow = await runFlow(stack, tenant, {
      agent,
      organisations: [acme!.id, globex!.id],
      params: { grant_management_action: 'create' },
    });
    const tokens = (await redeem(stack, tenant, flow.code!, flow.verifier)).body as {
      access_token: string;
      refresh_token: string;
      grant_id: string;
    };
    const api = `${stack.issuer}/account/api/connections`;
    const csrf = await eventually(
      async () => {
        const listed = JSON.parse((await agent.request(api)).text) as {
          csrf_token: string;
          apps: { grants: { grant_id: string }[] }[];
        };
        return listed.apps.some((a) => a.grants.some((g) => g.grant_id === tokens.grant_id))
          ? listed.csrf_token
          : undefined;
      },
      { what: 'the connection to be listed' },
    );
    const remove = (path: string) =>
      agent.request(`${api}/${tenant.client.client_id}${path}`, {
        method: 'DELETE',
        headers: { origin: stack.issuer, 'x-csrf-token': csrf },
      });
    expect((await remove(`/grants/${tokens.grant_id}/organisations/${globex!.id}`)).status).toBe(204);
    await eventually(
      async () => {
        const res = await introspect(rs, { token: tokens.access_token });
        return res.body.organisations?.length === 1 ? true : undefined;
      },
      { what: 'the disconnected organisation to be left out' },
    );
    expect((await introspect(rs, { token: tokens.access_token })).body).toMatchObject({
      active: true,
      organisations: [acme!.id],
    });
    expect((await introspect(tenant.client, { token: tokens.refresh_token })).body).toMatchObject({
      active: true,
      organisations: [acme!.id],
    });
    expect((await remove('')).status).toBe(204);
    await eventually(
      async () => ((await introspect(rs, { token: tokens.access_token })).body.active ? undefined : true),
      { what: 'the disconnected app to introspect inactive', intervalMs: 10 },
    );
    expect((await introspect(tenant.client, { token: tokens.refresh_token })).body).toEqual({
      active: false,
    });
  });

  it("a disabled client's tokens introspect inactive", async () => {
    const m2m = (await stack.register({
      client_name: 'Ledger Sync',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'invoices.read',
      resources: [API],
    })) as { client_id: string; client_secret: string };
    const issued = await fetch(`${stack.issuer}/oauth2/token`, {
      method: 'POST',
      headers: {
        authorization: basic(m2m.client_id, m2m.client_secret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    const { access_token } = (await issued.json()) as { access_token: string };
    expect((await introspect(rs, { token: access_token })).body).toMatchObject({
      active: true,
      client_id: m2m.client_id,
      sub: m2m.client_id,
    });
    expect((await stack.admin(`/clients/${m2m.client_id}/disable`)).status).toBe(204);
    await eventually(
      async () => ((await introspect(rs, { token: access_token })).body.active ? undefined : true),
      { what: 'the disabled client to be projected' },
    );
  });

  const inactive = (caller: { client_id: string; client_secret?: string }, token: string, what: string) =>
    eventually(async () => ((await introspect(caller, { token })).body.active ? undefined : true), {
      what,
      intervalMs: 10,
    });

  it('item 17: a replayed code revokes what it issued: its access token introspects inactive', async () => {
    const flow = await runFlow(stack, tenant, { params: { grant_management_action: 'create' } });
    const first = await redeem(stack, tenant, flow.code!, flow.verifier);
    expect(first.status).toBe(200);
    const token = first.body.access_token as string;
    expect((await introspect(rs, { token })).body.active).toBe(true);
    expect((await redeem(stack, tenant, flow.code!, flow.verifier)).status).toBe(400);
    await inactive(rs, token, "the replayed code's access token to introspect inactive");
    await inactive(tenant.client, first.body.refresh_token as string, 'its refresh token too');
  });

  it('item 28: a reused refresh token revokes its family: every access token of it introspects inactive', async () => {
    const tokens = await connect();
    const rotated = await refresh(stack, tenant, tokens.refresh_token);
    expect(rotated.status).toBe(200);
    expect((await refresh(stack, tenant, tokens.refresh_token)).status).toBe(400);
    await inactive(
      rs,
      rotated.body.access_token as string,
      "the family's latest access token to introspect inactive",
    );
    await inactive(rs, tokens.access_token, 'its first access token too');
    await inactive(tenant.client, rotated.body.refresh_token as string, 'the rotated refresh token too');
  });

  it('item 34: what RFC 7009 revokes introspects inactive (an access token by its jti, a refresh token with its family)', async () => {
    const tokens = await connect();
    const revoke = (token: string) =>
      fetch(`${stack.issuer}/oauth2/revoke`, {
        method: 'POST',
        headers: {
          authorization: basic(tenant.client.client_id, tenant.client.client_secret!),
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ token }),
      });
    const other = await connect();
    expect((await revoke(tokens.access_token)).status).toBe(200);
    await inactive(rs, tokens.access_token, 'the revoked access token to introspect inactive');
    expect((await introspect(tenant.client, { token: tokens.refresh_token })).body.active).toBe(true);
    expect((await revoke(tokens.refresh_token)).status).toBe(200);
    await inactive(tenant.client, tokens.refresh_token, 'the revoked refresh token to introspect inactive');
    // another grant of the same app is untouched
    expect((await introspect(rs, { token: other.access_token })).body.active).toBe(true);
    expect((await introspect(tenant.client, { token: other.refresh_token })).body.active).toBe(true);
  });

  it("an admin's client revocation makes the client's earlier tokens inactive, and leaves those issued after it active (as the token service issues them)", async () => {
    const job = (await stack.register({
      client_name: `Nightly job ${randomBytes(3).toString('hex')}`,
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
    })) as { client_id: string; client_secret: string };
    await eventually(
      async () =>
        (
          await stack.db.pool.query('SELECT 1 FROM introspection.clients WHERE client_id = $1', [
            job.client_id,
          ])
        ).rowCount
          ? true
          : undefined,
      { what: 'the introspection service to know the client' },
    );
    const token = async () => {
      const res = await fetch(`${stack.tokenUrl}/oauth2/token`, {
        method: 'POST',
        headers: {
          authorization: basic(job.client_id, job.client_secret),
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials',
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { access_token: string }).access_token;
    };
    const before = await token();
    expect((await introspect(job, { token: before })).body.active).toBe(true);
    const revoked = await fetch(`${stack.consentManagementUrl}/admin/revocations/clients/${job.client_id}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(revoked.status).toBe(200);
    await eventually(
      async () => ((await introspect(job, { token: before })).body.active === false ? true : undefined),
      {
        what: 'the earlier token inactive',
      },
    );
    // a token issued a second later (access tokens carry iat in whole seconds)
    clock.advance(2_000);
    try {
      const after = await token();
      expect((await introspect(job, { token: after })).body).toMatchObject({
        active: true,
        client_id: job.client_id,
      });
      expect((await introspect(job, { token: before })).body).toEqual({ active: false });
    } finally {
      clock.advance(-2_000);
    }
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

  it('streams revocation facts and heartbeats to resource servers (SSE), resuming after Last-Event-ID', async () => {
    const read = async (headers: Record<string, string>, until: (events: StreamEvent[]) => boolean) => {
      const abort = new AbortController();
      const res = await fetch(`${stack.issuer}/oauth2/revocations/stream`, {
        headers: { authorization: basic(rs.client_id, rs.client_secret), ...headers },
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const events: StreamEvent[] = [];
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      const deadline = Date.now() + 20_000;
      try {
        while (!until(events) && Date.now() < deadline) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const field = (name: string) =>
              block
                .split('\n')
                .find((l) => l.startsWith(`${name}: `))
                ?.slice(name.length + 2);
            const event = field('event');
            if (event) events.push({ id: field('id'), event, data: JSON.parse(field('data')!) });
          }
        }
      } finally {
        abort.abort();
      }
      return events;
    };
    const tokens = await connect();
    const del = await fetch(`${stack.consentUrl}/oauth2/grants/${tokens.grant_id}`, {
      method: 'DELETE',
      headers: { authorization: basic(tenant.client.client_id, tenant.client.client_secret!) },
    });
    expect(del.status).toBe(204);
    const key = `grant:${tokens.grant_id}`;
    const first = await read(
      {},
      (events) => events.some((e) => e.data.key === key) && events.some((e) => e.event === 'heartbeat'),
    );
    const fact = first.find((e) => e.data.key === key)!;
    expect(fact).toMatchObject({ event: 'revocation', data: { kind: 'grant', grantId: tokens.grant_id } });
    expect(fact.id).toBe(String(fact.data.sequence));
    const heartbeat = first.find((e) => e.event === 'heartbeat')!;
    expect(Date.parse(heartbeat.data.time!)).toBeGreaterThan(0);
    // resumed after that fact: it is not sent again
    const resumed = await read({ 'last-event-id': fact.id! }, (events) =>
      events.some((e) => e.event === 'heartbeat'),
    );
    expect(resumed.some((e) => e.data.key === key)).toBe(false);
    // only resource-server clients may subscribe
    const refused = await fetch(`${stack.issuer}/oauth2/revocations/stream`, {
      headers: { authorization: basic(tenant.client.client_id, tenant.client.client_secret!) },
    });
    expect(refused.status).toBe(401);
    expect((await fetch(`${stack.issuer}/oauth2/revocations/stream`)).status).toBe(401);
  });
});
