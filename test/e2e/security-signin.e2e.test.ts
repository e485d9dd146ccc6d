import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  Agent,
  authorizationRequest,
  createTenant,
  hidden,
  loginPage,
  runFlow,
  submitLogin,
  type Tenant,
} from './flow.ts';
import { type Stack, startStack } from './stack.ts';

/**
 * ../shared/research/security.md items 10 and 33 (sign-out) and the sign-in brute-force protection
 * (item 26's login part): the sign-in and session side of the authorization service, black box.
 */
describe('security checklist: sign-in and sessions', () => {
  let stack: Stack;
  let tenant: Tenant;
  let issuer: string;
  const request = (overrides: Record<string, string | undefined> = {}) =>
    authorizationRequest(stack, tenant, overrides);

  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    tenant = await createTenant(stack);
    issuer = stack.issuer;
  }, 120_000);
  afterAll(() => stack?.stop());

  it('item 10: the login POST answers 303, never 307', async () => {
    const agent = new Agent();
    const posted = await submitLogin(stack, agent, await loginPage(agent, request()), tenant.user);
    expect(posted.status).toBe(303);
  });

  it('item 33: signing out ends the session itself: a copy of the cookie no longer signs anyone in', async () => {
    const flow = await runFlow(stack, tenant);
    expect(flow.code).toBeTruthy();
    const copied = new Map(flow.agent.cookies);
    const logoutPage = await flow.agent.request(`${issuer}/logout`);
    const out = await flow.agent.request(`${issuer}/logout`, {
      form: { csrf_token: hidden(logoutPage.text, 'csrf_token') },
    });
    expect(out.status).toBe(200);
    const replay = new Agent();
    for (const [k, v] of copied) replay.cookies.set(k, v);
    const again = await replay.request(request());
    expect(new URL(again.location!, issuer).pathname).toBe('/login');
  });

  it('login lock-out: parallel guesses are counted before the password is checked', async () => {
    const victim = await createTenant(stack);
    const agent = new Agent();
    const page = await loginPage(
      agent,
      request({ client_id: victim.client.client_id, redirect_uri: victim.client.redirect_uri }),
    );
    const guesses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        submitLogin(stack, agent, page, { username: victim.user.username, password: `guess ${i}` }),
      ),
    );
    expect(guesses.filter((g) => g.status === 401).length).toBeLessThanOrEqual(5);
    expect(guesses.filter((g) => g.status === 429).length).toBeGreaterThanOrEqual(15);
  });

  it('login lock-out: repeated wrong passwords lock the username (429, Retry-After) without affecting others', async () => {
    const victim = await createTenant(stack);
    const attempt = async (password: string, tenantFor: Tenant = victim) => {
      const agent = new Agent();
      const page = await loginPage(
        agent,
        request({ client_id: tenantFor.client.client_id, redirect_uri: tenantFor.client.redirect_uri }),
      );
      return submitLogin(stack, agent, page, { username: tenantFor.user.username, password });
    };
    for (let i = 0; i < 5; i++) expect((await attempt('wrong password')).status).toBe(401);
    const locked = await attempt(victim.user.password);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await attempt(tenant.user.password, tenant)).status).toBe(303);
  });
});
