import { eventually } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Agent, createTenant, hidden, redeem, refresh, runFlow, type Tenant } from './flow.ts';
import { basic, type Stack, startStack } from './stack.ts';

/**
 * Connected apps for the signed-in user (issue 9): the JSON API under /account/api/connections, the
 * way to the page through the sign-in page, and the page's protections (framing, caching, CSRF).
 * The browser story is account-browser.e2e.test.ts.
 */
interface Listed {
  csrf_token: string;
  apps: {
    client_id: string;
    client_name: string;
    grants: {
      grant_id: string;
      organisations: { id: string; name: string }[];
      scopes: { scope: string; description: string }[];
      connected_at: string;
      last_used_at: string | null;
    }[];
  }[];
}

/** Signs `agent` in through the account's own sign-in page, starting from the account page. */
const signInToAccount = async (stack: Stack, agent: Agent, user: Tenant['user']) => {
  const start = await agent.request(`${stack.issuer}/account/connections`);
  expect(start.status).toBe(303);
  expect(start.location).toBe(`${stack.issuer}/login?return=account`);
  const login = await agent.request(start.location!);
  expect(login.status).toBe(200);
  const done = await agent.request(`${stack.issuer}/login`, {
    form: {
      return: hidden(login.text, 'return'),
      csrf_token: hidden(login.text, 'csrf_token'),
      username: user.username,
      password: user.password,
    },
  });
  expect(done.status).toBe(303);
  expect(done.location).toBe(`${stack.issuer}/account/connections`);
  return agent.request(done.location!);
};

describe('connected apps: the account page and its JSON API', () => {
  let stack: Stack;
  let tenant: Tenant;
  let other: Tenant;

  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    tenant = await createTenant(stack);
    other = await createTenant(stack);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const api = (agent: Agent, path = '', init: { method?: string; headers?: Record<string, string> } = {}) =>
    agent.request(`${stack.issuer}/account/api/connections${path}`, init);
  const list = async (agent: Agent) => JSON.parse((await api(agent)).text) as Listed;
  const remove = async (agent: Agent, path: string, headers?: Record<string, string>) =>
    api(agent, path, {
      method: 'DELETE',
      headers: headers ?? { origin: stack.issuer, 'x-csrf-token': (await list(agent)).csrf_token },
    });
  /** Connects the tenant's app (a new grant each time) to these organisations; the tokens it got. */
  const connect = async (t: Tenant, agent: Agent, organisations: string[]) => {
    const flow = await runFlow(stack, t, {
      agent,
      organisations,
      params: { grant_management_action: 'create' },
    });
    const tokens = await redeem(stack, t, flow.code!, flow.verifier);
    expect(tokens.status).toBe(200);
    return tokens.body as { grant_id: string; refresh_token: string; access_token: string };
  };
  const grantOf = async (t: Tenant, grantId: string) =>
    fetch(`${stack.issuer}/oauth2/grants/${grantId}`, {
      headers: { authorization: basic(t.client.client_id, t.client.client_secret!) },
    });

  it('signs in through the sign-in page and lands on the page, with the consent page protections', async () => {
    const agent = new Agent();
    const page = await signInToAccount(stack, agent, tenant.user);
    expect(page.status).toBe(200);
    expect(page.text).toContain('<title>Connected apps</title>');
    // RFC 9700 §4.16 clickjacking; no caching of a page with CSRF tokens
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    // already signed in: the sign-in page sends the browser straight back
    const again = await agent.request(`${stack.issuer}/login?return=account`);
    expect(again.status).toBe(303);
    expect(again.location).toBe(`${stack.issuer}/account/connections`);
  });

  it('signing out ends access to the page and the API (a copied cookie included)', async () => {
    const agent = new Agent();
    expect((await signInToAccount(stack, agent, tenant.user)).status).toBe(200);
    const copy = new Agent();
    for (const [k, v] of agent.cookies) copy.cookies.set(k, v);
    const logout = await agent.request(`${stack.issuer}/logout`);
    const out = await agent.request(`${stack.issuer}/logout`, {
      form: { csrf_token: hidden(logout.text, 'csrf_token') },
    });
    expect(out.status).toBeLessThan(400);
    const page = await copy.request(`${stack.issuer}/account/connections`);
    expect(page.status).toBe(303);
    expect(page.location).toBe(`${stack.issuer}/login?return=account`);
    expect((await api(copy)).status).toBe(401);
  });

  it('never redirects anywhere but the account page: no URL from the query (RFC 9700 §4.11.2)', async () => {
    for (const value of ['https://evil.example/', '//evil.example', '/account/connections', 'Account']) {
      const res = await new Agent().request(`${stack.issuer}/login?return=${encodeURIComponent(value)}`);
      expect(res.status, value).toBe(400);
      expect(res.location, value).toBeUndefined();
    }
  });

  it('lists, then disconnects an organisation, a grant and an app, each only for its user', async () => {
    const agent = new Agent();
    const [acme, globex, initech] = tenant.organisations as [
      Tenant['organisations'][number],
      Tenant['organisations'][number],
      Tenant['organisations'][number],
    ];
    const first = await connect(tenant, agent, [acme.id, globex.id]);
    const second = await connect(tenant, agent, [initech.id]);
    const third = await connect(tenant, agent, [acme.id]);

    // "last used": the code redemption (CodeRedeemed) and each refresh (RefreshTokenRotated), projected per grant
    const listed = await eventually(
      async () => {
        const l = await list(agent);
        return l.apps[0]?.grants.every((g) => g.last_used_at) ? l : undefined;
      },
      { what: 'the grants and their last use to be projected' },
    );
    expect(listed.apps).toHaveLength(1);
    const [app] = listed.apps;
    expect(app!.client_id).toBe(tenant.client.client_id);
    expect(app!.client_name).toMatch(/^Ledger App /);
    expect(app!.grants.map((g) => g.grant_id)).toEqual([first.grant_id, second.grant_id, third.grant_id]);
    expect(app!.grants[0]!.organisations).toEqual([acme, globex]);
    expect(app!.grants[0]!.scopes).toEqual([
      { scope: 'invoices.read', description: 'Read your invoices' },
      { scope: 'invoices.write', description: 'Create and edit invoices' },
    ]);
    expect(Date.parse(app!.grants[0]!.connected_at)).toBeLessThanOrEqual(Date.now());

    // another user cannot touch this user's grants, nor learn that they exist: 404 as for unknown ids
    const stranger = new Agent();
    await connect(other, stranger, [other.organisations[0]!.id]);
    const strangers = `/${tenant.client.client_id}/grants/${first.grant_id}`;
    expect((await remove(stranger, `${strangers}/organisations/${acme.id}`)).status).toBe(404);
    expect((await remove(stranger, strangers)).status).toBe(404);
    expect((await remove(stranger, `/${tenant.client.client_id}`)).status).toBe(404);
    expect((await remove(agent, `/${tenant.client.client_id}/grants/no-such-grant-id`)).status).toBe(404);

    // one organisation: the grant keeps the other
    const org = await remove(
      agent,
      `/${tenant.client.client_id}/grants/${first.grant_id}/organisations/${acme.id}`,
    );
    expect(org.status).toBe(204);
    const managed = await grantOf(tenant, first.grant_id);
    expect(managed.status).toBe(200);
    expect(((await managed.json()) as { organisations: unknown }).organisations).toEqual([globex]);
    expect((await refresh(stack, tenant, first.refresh_token)).status).toBe(200);
    expect((await list(agent)).apps[0]!.grants[0]!.organisations).toEqual([globex]);

    // one grant: the others stay
    expect((await remove(agent, `/${tenant.client.client_id}/grants/${second.grant_id}`)).status).toBe(204);
    expect((await refresh(stack, tenant, second.refresh_token)).body.error).toBe('invalid_grant');
    expect((await grantOf(tenant, second.grant_id)).status).toBe(404);
    expect((await list(agent)).apps[0]!.grants.map((g) => g.grant_id)).toEqual([
      first.grant_id,
      third.grant_id,
    ]);

    // the app: every grant of it for this user; the other user's connection is untouched
    expect((await remove(agent, `/${tenant.client.client_id}`)).status).toBe(204);
    expect((await list(agent)).apps).toEqual([]);
    expect((await refresh(stack, tenant, third.refresh_token)).body.error).toBe('invalid_grant');
    expect((await grantOf(tenant, first.grant_id)).status).toBe(404);
    expect((await list(stranger)).apps).toHaveLength(1);
    expect((await remove(agent, `/${tenant.client.client_id}`)).status).toBe(404);
  });

  it('refuses a state-changing request without the CSRF header or from another origin, and without a session', async () => {
    const agent = new Agent();
    const grant = await connect(tenant, agent, [tenant.organisations[1]!.id]);
    const { csrf_token } = await list(agent);
    const path = `/${tenant.client.client_id}/grants/${grant.grant_id}`;
    const refusedHeaders: Record<string, string>[] = [
      { origin: stack.issuer },
      { 'x-csrf-token': csrf_token },
      { origin: 'https://evil.example', 'x-csrf-token': csrf_token },
      { origin: stack.issuer, 'x-csrf-token': 'x'.repeat(43) },
    ];
    for (const headers of refusedHeaders) {
      const res = await remove(agent, path, headers);
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    // a token of another session is worth nothing here
    const stranger = new Agent();
    await connect(other, stranger, [other.organisations[1]!.id]);
    const theirs = (await list(stranger)).csrf_token;
    expect((await remove(agent, path, { origin: stack.issuer, 'x-csrf-token': theirs })).status).toBe(403);
    // no session at all
    expect((await api(new Agent())).status).toBe(401);
    expect(
      (await remove(new Agent(), path, { origin: stack.issuer, 'x-csrf-token': csrf_token })).status,
    ).toBe(401);
    // nothing happened
    expect((await refresh(stack, tenant, grant.refresh_token)).status).toBe(200);
  });

  it('refuses a page form without the session’s CSRF token, and another user’s grant with 404', async () => {
    const agent = new Agent();
    const grant = await connect(tenant, agent, [tenant.organisations[2]!.id]);
    const page = await agent.request(`${stack.issuer}/account/connections`);
    const csrf = hidden(page.text, 'csrf_token');
    const form = {
      disconnect: 'grant',
      client_id: tenant.client.client_id,
      grant_id: grant.grant_id,
    };
    const post = (a: Agent, f: Record<string, string>) =>
      a.request(`${stack.issuer}/account/connections`, { form: f });
    expect((await post(agent, form)).status).toBe(403);
    expect((await post(agent, { ...form, csrf_token: 'x'.repeat(43) })).status).toBe(403);
    const stranger = new Agent();
    await connect(other, stranger, [other.organisations[2]!.id]);
    const theirPage = await stranger.request(`${stack.issuer}/account/connections`);
    const theirCsrf = hidden(theirPage.text, 'csrf_token');
    expect((await post(agent, { ...form, csrf_token: theirCsrf })).status).toBe(403);
    // the stranger with their own valid token, on this user's grant: not found
    const foreign = await post(stranger, { ...form, csrf_token: theirCsrf });
    expect(foreign.status).toBe(404);
    expect((await refresh(stack, tenant, grant.refresh_token)).status).toBe(200);
    // and the user themselves: 303 back to the page, with a confirmation
    const done = await post(agent, { ...form, csrf_token: csrf });
    expect(done.status).toBe(303);
    expect(done.location).toBe(`${stack.issuer}/account/connections`);
    const after = await agent.request(done.location!);
    expect(after.text).toContain('role="status"');
    expect(after.text).toContain('was disconnected');
    expect((await refresh(stack, tenant, grant.refresh_token)).body.error).toBe('invalid_grant');
  });
});
