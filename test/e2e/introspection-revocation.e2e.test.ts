import { randomBytes } from 'node:crypto';
import { offsetClock } from '@grantline/clock';
import { eventually } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Agent, redeem, refresh, runFlow, type Tenant } from './flow.ts';
import {
  API,
  type Client,
  connector,
  introspector,
  startIntrospectionStack,
} from './introspection-fixture.ts';
import { ADMIN_TOKEN, basic, type Stack } from './stack.ts';

/** Revocations reaching introspection: disconnections, disabled clients, replays, RFC 7009, admin revocations. */
describe('introspection: revocations take effect', () => {
  const clock = offsetClock();
  let stack: Stack;
  let tenant: Tenant;
  let rs: Client;
  beforeAll(async () => {
    ({ stack, tenant, rs } = await startIntrospectionStack(inject('infra'), clock));
  }, 120_000);
  afterAll(() => stack?.stop());
  const introspect = introspector(() => stack);
  const connect = connector(
    () => stack,
    () => tenant,
  );

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
});
