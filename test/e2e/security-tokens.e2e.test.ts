import { offsetClock } from '@grantline/clock';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTenant, hidden, pkce, redeem, refresh, runFlow, type Tenant } from './flow.ts';
import { basic, type Stack, startStack, tokenRequest } from './stack.ts';

/**
 * Every flow here makes a new grant: several tests revoke grants (reuse, disconnect), and the consent
 * service revokes them asynchronously, so a flow that merged into the latest grant could race that.
 */
const NEW_GRANT = { params: { grant_management_action: 'create' } };

/**
 * ../shared/research/security.md items 17 to 21 and 28 to 33 (authorization codes and refresh
 * tokens) as black-box tests, named by item number. Where an item also asks that access tokens stop
 * working, the deny-list of the revocation issue completes it; here the revoked access token ids
 * are asserted in the published revocation events.
 */
describe('security checklist: authorization codes and refresh tokens', () => {
  let stack: Stack;
  let tenant: Tenant;
  const auth = () => ({ authorization: basic(tenant.client.client_id, tenant.client.client_secret!) });
  const tokensFor = async (t: Tenant = tenant) => {
    const flow = await runFlow(stack, t, NEW_GRANT);
    const res = await redeem(stack, t, flow.code!, flow.verifier);
    expect(res.status).toBe(200);
    return res.body as { access_token: string; refresh_token: string; grant_id: string };
  };
  /** the token service's own events of one type, newest first */
  const events = async (type: string) =>
    (
      await stack.db.pool.query<{ data: Record<string, unknown> }>(
        'SELECT data FROM token.events WHERE type = $1 ORDER BY position DESC',
        [type],
      )
    ).rows.map((r) => r.data);

  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    tenant = await createTenant(stack);
  }, 120_000);
  afterAll(() => stack?.stop());

  it('item 17: a second redemption is invalid_grant and revokes what the first one issued', async () => {
    const flow = await runFlow(stack, tenant, NEW_GRANT);
    const first = await redeem(stack, tenant, flow.code!, flow.verifier);
    expect(first.status).toBe(200);
    const second = await redeem(stack, tenant, flow.code!, flow.verifier);
    expect(second.status).toBe(400);
    expect(second.body.error).toBe('invalid_grant');
    expect((await refresh(stack, tenant, first.body.refresh_token as string)).body.error).toBe(
      'invalid_grant',
    );
    const at1 = decodeJwt(first.body.access_token as string).jti;
    expect((await events('CodeReplayDetected'))[0]).toMatchObject({ accessTokenIds: [at1] });
    expect((await events('RefreshFamilyRevoked'))[0]).toMatchObject({
      reason: 'code_replay',
      accessTokenIds: [at1],
    });
  });

  it('item 18: a replay with invalid parameters revokes nothing', async () => {
    const flow = await runFlow(stack, tenant, NEW_GRANT);
    const first = await redeem(stack, tenant, flow.code!, flow.verifier);
    const replay = await redeem(stack, tenant, flow.code!, pkce().verifier);
    expect(replay.body.error).toBe('invalid_grant');
    expect((await refresh(stack, tenant, first.body.refresh_token as string)).status).toBe(200);
  });

  it('item 19: 20 concurrent redemptions of one code: exactly one succeeds', async () => {
    const flow = await runFlow(stack, tenant, NEW_GRANT);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => redeem(stack, tenant, flow.code!, flow.verifier)),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.body.error === 'invalid_grant')).toHaveLength(19);
  });

  it('item 19, scaled out: 20 concurrent redemptions spread over two token service instances: exactly one succeeds', async () => {
    const second = await stack.addTokenInstance();
    const flow = await runFlow(stack, tenant, NEW_GRANT);
    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code: flow.code!,
      redirect_uri: tenant.client.redirect_uri,
      code_verifier: flow.verifier,
    }).toString();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fetch(`${i % 2 === 0 ? stack.tokenUrl : second}/oauth2/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth() },
          body: form,
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> })),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.body.error === 'invalid_grant')).toHaveLength(19);

    // concurrent refresh of one token across both instances: one rotation wins, the rest is reuse
    const tokens = await tokensFor();
    const refreshes = await Promise.all(
      [stack.tokenUrl, second, stack.tokenUrl, second].map((url) =>
        fetch(`${url}/oauth2/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth() },
          body: new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: tokens.refresh_token,
          }).toString(),
        }).then((r) => r.status),
      ),
    );
    expect(refreshes.filter((s) => s === 200)).toHaveLength(1);
  });

  it('item 20: a code is bound to its client and its redirect_uri', async () => {
    const other = await createTenant(stack);
    const flow = await runFlow(stack, tenant, NEW_GRANT);
    expect((await redeem(stack, other, flow.code!, flow.verifier)).body.error).toBe('invalid_grant');
    const moved = await redeem(stack, tenant, flow.code!, flow.verifier, {
      redirect_uri: 'https://app.example/other',
    });
    expect(moved.body.error).toBe('invalid_grant');
    expect((await redeem(stack, tenant, flow.code!, flow.verifier)).status).toBe(200);
  });

  it('item 28: reusing a rotated refresh token revokes the whole family, and the grant', async () => {
    const tokens = await tokensFor();
    // a chain of rotations; then a token from the middle of it comes back
    const chain = [tokens];
    for (let i = 0; i < 3; i++) {
      const next = await refresh(stack, tenant, chain.at(-1)!.refresh_token);
      expect(next.status).toBe(200);
      chain.push(next.body as typeof tokens);
    }
    const reuse = await refresh(stack, tenant, chain[1]!.refresh_token);
    expect(reuse.body.error).toBe('invalid_grant');
    expect((await refresh(stack, tenant, chain[3]!.refresh_token)).body.error).toBe('invalid_grant');
    const revoked = (await events('RefreshFamilyRevoked'))[0] as { reason: string; accessTokenIds: string[] };
    expect(revoked.reason).toBe('reuse');
    expect(revoked.accessTokenIds).toEqual(chain.map((t) => decodeJwt(t.access_token).jti));
    // the consent service hears of the reuse and ends the grant
    await expect
      .poll(
        async () =>
          (await fetch(`${stack.consentUrl}/oauth2/grants/${tokens.grant_id}`, { headers: auth() })).status,
        { timeout: 10_000 },
      )
      .toBe(404);
  });

  it('item 29: two concurrent refreshes with one token: exactly one 200, and the grant is revoked', async () => {
    const tokens = await tokensFor();
    const results = await Promise.all([
      refresh(stack, tenant, tokens.refresh_token),
      refresh(stack, tenant, tokens.refresh_token),
    ]);
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.body.error === 'invalid_grant')).toHaveLength(1);
    const winner = results.find((r) => r.status === 200)!;
    expect((await refresh(stack, tenant, winner.body.refresh_token as string)).body.error).toBe(
      'invalid_grant',
    );

    // the same further along a chain (a refresh reads only the family's head and the presented tail)
    const later = await tokensFor();
    const rotated = (await refresh(stack, tenant, later.refresh_token)).body.refresh_token as string;
    const racing = await Promise.all(Array.from({ length: 4 }, () => refresh(stack, tenant, rotated)));
    expect(racing.filter((r) => r.status === 200)).toHaveLength(1);
    const survivor = racing.find((r) => r.status === 200)!;
    expect((await refresh(stack, tenant, survivor.body.refresh_token as string)).body.error).toBe(
      'invalid_grant',
    );
  });

  it('item 31: a refresh token is bound to its client, and its scope can only narrow', async () => {
    const other = await createTenant(stack);
    const tokens = await tokensFor();
    expect((await refresh(stack, other, tokens.refresh_token)).body.error).toBe('invalid_grant');
    const wider = await runFlow(stack, tenant, {
      params: { scope: 'invoices.read', grant_management_action: 'create' },
    });
    const narrow = await redeem(stack, tenant, wider.code!, wider.verifier);
    const widened = await refresh(stack, tenant, narrow.body.refresh_token as string, {
      scope: 'invoices.read invoices.write',
    });
    expect(widened.body.error).toBe('invalid_scope');
    expect(
      (await refresh(stack, tenant, narrow.body.refresh_token as string, { scope: 'invoices.read' })).status,
    ).toBe(200);
  });

  it('item 20: redirect_uri may be left out of the token request only when the authorization request left it out', async () => {
    const flow = await runFlow(stack, tenant, { params: { ...NEW_GRANT.params, redirect_uri: undefined } });
    expect(flow.code).toBeTruthy();
    const res = await tokenRequest(
      stack,
      { grant_type: 'authorization_code', code: flow.code!, code_verifier: flow.verifier },
      auth(),
    );
    expect(res.status).toBe(200);
    const named = await runFlow(stack, tenant, NEW_GRANT);
    const missing = await tokenRequest(
      stack,
      { grant_type: 'authorization_code', code: named.code!, code_verifier: named.verifier },
      auth(),
    );
    expect(missing.body.error).toBe('invalid_request');
  });

  it('Grant Management refuses public clients, which cannot authenticate', async () => {
    const publicTenant = await createTenant(stack, {
      redirect_uris: ['http://127.0.0.1/cb'],
      token_endpoint_auth_method: 'none',
    });
    const flow = await runFlow(stack, publicTenant, NEW_GRANT);
    const tokens = await redeem(stack, publicTenant, flow.code!, flow.verifier);
    expect(tokens.status).toBe(200);
    const res = await fetch(`${stack.consentUrl}/oauth2/grants/${tokens.body.grant_id}`, {
      method: 'DELETE',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `client_id=${publicTenant.client.client_id}`,
    });
    expect(res.status).toBe(401);
    expect((await refresh(stack, publicTenant, tokens.body.refresh_token as string)).status).toBe(200);
  });

  it('item 32: a confidential client must authenticate to refresh', async () => {
    const tokens = await tokensFor();
    const res = await tokenRequest(stack, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      client_id: tenant.client.client_id,
    });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('item 33: refresh tokens die when the app is disconnected, an organisation removed, or the password changes', async () => {
    const disconnected = await tokensFor();
    await fetch(`${stack.consentUrl}/oauth2/grants/${disconnected.grant_id}`, {
      method: 'DELETE',
      headers: auth(),
    });
    await expect
      .poll(async () => (await refresh(stack, tenant, disconnected.refresh_token)).body.error, {
        timeout: 10_000,
      })
      .toBe('invalid_grant');

    // leaving an organisation disconnects it from the user's grants; leaving all of them ends the grant
    const member = await createTenant(stack);
    const connected = await tokensFor(member);
    const [first, second] = member.organisations;
    expect(
      (await stack.admin(`/users/${member.user.id}/organisations/${first!.id}`, {}, 'DELETE')).status,
    ).toBe(204);
    let latest = connected.refresh_token;
    await expect
      .poll(
        async () => {
          const r = await refresh(stack, member, latest);
          latest = (r.body.refresh_token as string) ?? latest;
          return decodeJwt(r.body.access_token as string).organisations;
        },
        { timeout: 10_000 },
      )
      .toEqual([second!.id]);
    expect(
      (await stack.admin(`/users/${member.user.id}/organisations/${second!.id}`, {}, 'DELETE')).status,
    ).toBe(204);
    await expect
      .poll(
        async () => {
          const r = await refresh(stack, member, latest);
          latest = (r.body.refresh_token as string) ?? latest;
          return r.body.error;
        },
        { timeout: 10_000 },
      )
      .toBe('invalid_grant');
    await expect
      .poll(
        async () =>
          (
            await fetch(`${stack.consentUrl}/oauth2/grants/${connected.grant_id}`, {
              headers: { authorization: basic(member.client.client_id, member.client.client_secret!) },
            })
          ).status,
        { timeout: 10_000 },
      )
      .toBe(404);

    const own = await createTenant(stack);
    const tokens = await tokensFor(own);
    const changed = await stack.admin(`/users/${own.user.id}/password`, { password: 'a new password 123' });
    expect(changed.status).toBe(204);
    await expect
      .poll(async () => (await refresh(stack, own, tokens.refresh_token)).body.error, { timeout: 10_000 })
      .toBe('invalid_grant');
  });
});

/**
 * The lifetimes end to end: every service runs on one clock the test moves past a lifetime, instead
 * of sleeping through it (the lifetimes themselves, to the millisecond, are unit tests on a manual
 * clock: services/token/test/lifetimes.unit.test.ts, packages/flow/test/lifetimes.unit.test.ts).
 * Here: that each service reads the clock it is given. Default lifetimes, except the grace window,
 * which is off by default.
 */
describe('security checklist: lifetimes and the refresh grace window (on a moved clock)', () => {
  let stack: Stack;
  let tenant: Tenant;
  const clock = offsetClock();
  const DAY_MS = 86_400_000;
  beforeAll(async () => {
    stack = await startStack(
      inject('infra'),
      { REFRESH_TOKEN_GRACE_SECONDS: '3', REFRESH_TOKEN_ENDS_WITH_SESSION: 'true' },
      { clock },
    );
    tenant = await createTenant(stack);
  }, 120_000);
  afterAll(() => stack?.stop());
  /** a code redeemed at once, checked to have succeeded */
  const redeemed = async (flow: Awaited<ReturnType<typeof runFlow>>) => {
    const res = await redeem(stack, tenant, flow.code!, flow.verifier);
    expect(res.status).toBe(200);
    return res.body;
  };

  it('item 21: a code redeemed after its lifetime is invalid_grant', async () => {
    const flow = await runFlow(stack, tenant, NEW_GRANT);
    clock.advance(61_000); // AUTHORIZATION_CODE_TTL_SECONDS: 60
    const res = await redeem(stack, tenant, flow.code!, flow.verifier);
    expect(res.body.error).toBe('invalid_grant');
    expect(res.body.error_description).toMatch(/expired/);
  });

  it('item 30: a retry with the previous refresh token inside the grace window succeeds; after it, the family dies', async () => {
    const flow = await runFlow(stack, tenant, NEW_GRANT);
    const tokens = await redeemed(flow);
    const rotated = await refresh(stack, tenant, tokens.refresh_token as string);
    expect(rotated.body).toMatchObject({ token_type: 'Bearer' });
    const retried = await refresh(stack, tenant, tokens.refresh_token as string);
    expect(retried.body).toMatchObject({ token_type: 'Bearer' });
    clock.advance(3_300);
    expect((await refresh(stack, tenant, tokens.refresh_token as string)).body.error).toBe('invalid_grant');
    expect((await refresh(stack, tenant, retried.body.refresh_token as string)).body.error).toBe(
      'invalid_grant',
    );
  });

  it('item 33: with REFRESH_TOKEN_ENDS_WITH_SESSION, signing out ends the refresh tokens of that sign-in', async () => {
    const flow = await runFlow(stack, tenant, NEW_GRANT);
    const tokens = await redeemed(flow);
    const other = await runFlow(stack, tenant, { params: { grant_management_action: 'create' } });
    const otherTokens = await redeemed(other);
    const page = await flow.agent.request(`${stack.issuer}/logout`);
    const out = await flow.agent.request(`${stack.issuer}/logout`, {
      form: { csrf_token: hidden(page.text, 'csrf_token') },
    });
    expect(out.status).toBe(200);
    await expect
      .poll(async () => (await refresh(stack, tenant, tokens.refresh_token as string)).body.error, {
        timeout: 10_000,
      })
      .toBe('invalid_grant');
    // another sign-in's tokens live on
    expect((await refresh(stack, tenant, otherTokens.refresh_token as string)).body).toMatchObject({
      token_type: 'Bearer',
    });
  });

  it('item 33: a refresh token family unused for longer than the idle limit dies', async () => {
    const flow = await runFlow(stack, tenant, NEW_GRANT);
    const tokens = await redeemed(flow);
    const used = await redeemed(await runFlow(stack, tenant, NEW_GRANT));
    clock.advance(29 * DAY_MS); // REFRESH_TOKEN_IDLE_SECONDS: 30 days
    const kept = await refresh(stack, tenant, used.refresh_token as string);
    expect(kept.body).toMatchObject({ token_type: 'Bearer' });
    clock.advance(DAY_MS + 1_000);
    const res = await refresh(stack, tenant, tokens.refresh_token as string);
    expect(res.body.error).toBe('invalid_grant');
    expect(res.body.error_description).toMatch(/expired/);
    // used a day ago: idle for one day only
    expect((await refresh(stack, tenant, kept.body.refresh_token as string)).body).toMatchObject({
      token_type: 'Bearer',
    });
  });
});
