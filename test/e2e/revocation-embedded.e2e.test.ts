import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EmbeddedServer, startEmbedded } from '@grantline/server';
import { freePort } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, redeem, refresh, runFlow, type Tenant } from './flow.ts';
import { basic, type Stack } from './stack.ts';

/**
 * The embedded mode (`pnpm start`: every service in one process, PGlite, the in-process bus): the
 * route table sends `/oauth2/revoke` to the token service and `/admin/revocations` to consent.
 */
describe('revocation in the embedded mode', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'grantline-revocation-'));
  let server: EmbeddedServer;
  let stack: Stack;
  let tenant: Tenant;
  let adminToken: string;

  beforeAll(async () => {
    const port = await freePort();
    server = await startEmbedded({
      GRANTLINE_DATA_DIR: dataDir,
      PORT: String(port),
      MANAGEMENT_PORT: '0',
      GRANTLINE_ISSUER: `http://127.0.0.1:${port}`,
      LOG_LEVEL: 'silent',
      PASSWORD_SCRYPT_N: '16384',
    });
    const seed = server.demo!;
    adminToken = (JSON.parse(readFileSync(server.secretsFile, 'utf8')) as { adminToken: string }).adminToken;
    // the flow helpers need only the one origin
    stack = { issuer: server.issuer, tokenUrl: server.url, consentUrl: server.url } as unknown as Stack;
    tenant = {
      organisations: seed.organisations,
      user: seed.user,
      client: seed.webClient,
      scopes: ['invoices.read'],
    };
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const tokens = async (agent: Agent) => {
    const flow = await runFlow(stack, tenant, { agent, params: { grant_management_action: 'create' } });
    const res = await redeem(stack, tenant, flow.code!, flow.verifier);
    expect(res.status).toBe(200);
    return res.body as { refresh_token: string; grant_id: string };
  };

  it('RFC 7009: a revoked refresh token then fails with invalid_grant; the metadata lists the endpoint', async () => {
    const meta = (await (
      await fetch(`${server.url}/.well-known/oauth-authorization-server`)
    ).json()) as Record<string, unknown>;
    expect(meta.revocation_endpoint).toBe(`${server.issuer}/oauth2/revoke`);
    const t = await tokens(new Agent());
    const res = await fetch(`${server.url}/oauth2/revoke`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic(tenant.client.client_id, tenant.client.client_secret!),
      },
      body: new URLSearchParams({ token: t.refresh_token }).toString(),
    });
    expect(res.status).toBe(200);
    expect((await refresh(stack, tenant, t.refresh_token)).body.error).toBe('invalid_grant');
  });

  const grantStatus = async (grantId: string) =>
    (
      await fetch(`${server.url}/oauth2/grants/${grantId}`, {
        headers: { authorization: basic(tenant.client.client_id, tenant.client.client_secret!) },
      })
    ).status;
  const until = async (check: () => Promise<boolean>, what: string) => {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`not within 10 s: ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('reactors commit their commands in the embedded mode: a reused refresh token ends the grant', async () => {
    const t = await tokens(new Agent());
    const rotated = await refresh(stack, tenant, t.refresh_token);
    expect(rotated.status).toBe(200);
    expect(await grantStatus(t.grant_id)).toBe(200);
    // the first refresh token again: reuse (RFC 9700 §4.14.2); consent's reactor revokes the grant,
    // issuing its command outside the projection's transaction (on PGlite's one session a command
    // inside it waited for the transaction forever)
    expect((await refresh(stack, tenant, t.refresh_token)).body.error).toBe('invalid_grant');
    await until(async () => (await grantStatus(t.grant_id)) === 404, 'the grant revoked by the reactor');
  });

  it('reactors commit their commands in the embedded mode: an organisation the user leaves is disconnected', async () => {
    const t = await tokens(new Agent());
    const grant = async () =>
      (await (
        await fetch(`${server.url}/oauth2/grants/${t.grant_id}`, {
          headers: { authorization: basic(tenant.client.client_id, tenant.client.client_secret!) },
        })
      ).json()) as { organisations?: string[] };
    const before = (await grant()).organisations ?? [];
    expect(before.length).toBeGreaterThan(0);
    const leaving = before[0]!;
    const res = await fetch(
      `${server.managementUrl}/admin/users/${tenant.user.id}/organisations/${leaving}`,
      {
        method: 'DELETE',
        headers: { authorization: `Bearer ${adminToken}` },
      },
    );
    expect(res.status).toBeLessThan(300);
    await until(
      async () => !((await grant()).organisations ?? [leaving]).includes(leaving),
      'the organisation disconnected by the reactor',
    );
  });

  it('admin revocation of the subject on the management port: its refresh tokens fail with invalid_grant at once', async () => {
    const t = await tokens(new Agent());
    const res = await fetch(`${server.managementUrl}/admin/revocations/subjects/${tenant.user.id}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ subject: tenant.user.id, projected: true });
    expect((await refresh(stack, tenant, t.refresh_token)).body.error).toBe('invalid_grant');
    // the registry's admin API is still where it was
    const orgs = await fetch(`${server.managementUrl}/admin/organisations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Still routed' }),
    });
    expect(orgs.status).toBe(201);
  });
});
