import { eventually } from '@grantline/testing';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Agent, createTenant, redeem, refresh, runFlow, type Tenant } from './flow.ts';
import { basic, type Stack, startStack } from './stack.ts';

/** The authorization code flow through the real pages, with scripted HTTP (the browser test is separate). */
describe('authorization code flow with PKCE, consent per organisation, refresh tokens, grant management', () => {
  let stack: Stack;
  let tenant: Tenant;
  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    tenant = await createTenant(stack);
  }, 120_000);
  afterAll(() => stack?.stop());

  it('signs in, connects two of three organisations, and the tokens carry the grant and those organisations', async () => {
    const flow = await runFlow(stack, tenant);
    expect(flow.consentShown).toBe(true);
    expect(flow.location?.origin + flow.location!.pathname).toBe(tenant.client.redirect_uri);
    expect(flow.location?.searchParams.get('state')).toBe(flow.state);
    expect(flow.location?.searchParams.get('iss')).toBe(stack.issuer);
    const tokens = await redeem(stack, tenant, flow.code!, flow.verifier);
    expect(tokens.status).toBe(200);
    const claims = decodeJwt(tokens.body.access_token as string);
    expect(claims.sub).toBe(tenant.user.id);
    expect(claims.grant_id).toBe(tokens.body.grant_id);
    expect(claims.organisations).toEqual(tenant.organisations.slice(0, 2).map((o) => o.id));
    expect(claims.scope).toBe('invoices.read invoices.write');
    const refreshed = await refresh(stack, tenant, tokens.body.refresh_token as string, {
      scope: 'invoices.read',
    });
    expect(refreshed.status).toBe(200);
    expect(decodeJwt(refreshed.body.access_token as string).scope).toBe('invoices.read');
    expect(refreshed.body.refresh_token).not.toBe(tokens.body.refresh_token);
  });

  it('skips the consent page for a repeat request that the grant already covers, and shows it with prompt=consent', async () => {
    const agent = new Agent();
    const first = await runFlow(stack, tenant, { agent, params: { grant_management_action: 'create' } });
    expect(first.consentShown).toBe(true);
    const firstGrant = (await redeem(stack, tenant, first.code!, first.verifier)).body.grant_id;
    // the new grant must have reached the consent service's query model
    await eventually(
      async () =>
        (await stack.db.pool.query('SELECT 1 FROM consent.grants WHERE grant_id = $1', [firstGrant])).rowCount
          ? true
          : undefined,
      { what: 'the consent service to know the grant' },
    );
    const again = await runFlow(stack, tenant, { agent });
    expect(again.consentShown).toBe(false);
    expect((await redeem(stack, tenant, again.code!, again.verifier)).body.grant_id).toBe(firstGrant);
    const forced = await runFlow(stack, tenant, { agent, params: { prompt: 'consent' } });
    expect(forced.consentShown).toBe(true);
  });

  it('keeps two grants for two use-cases: revoking one leaves the other working', async () => {
    const agent = new Agent();
    const a = await runFlow(stack, tenant, { agent, params: { grant_management_action: 'create' } });
    const b = await runFlow(stack, tenant, {
      agent,
      params: { grant_management_action: 'create', scope: 'invoices.read' },
      organisations: [tenant.organisations[2]!.id],
    });
    const ta = await redeem(stack, tenant, a.code!, a.verifier);
    const tb = await redeem(stack, tenant, b.code!, b.verifier);
    expect(ta.body.grant_id).not.toBe(tb.body.grant_id);
    const auth = { authorization: basic(tenant.client.client_id, tenant.client.client_secret!) };
    const query = await fetch(`${stack.consentUrl}/oauth2/grants/${tb.body.grant_id}`, { headers: auth });
    expect(query.status).toBe(200);
    expect(await query.json()).toMatchObject({
      grant_id: tb.body.grant_id,
      scopes: [{ scope: 'invoices.read' }],
      organisations: [tenant.organisations[2]],
    });
    const del = await fetch(`${stack.consentUrl}/oauth2/grants/${ta.body.grant_id}`, {
      method: 'DELETE',
      headers: auth,
    });
    expect(del.status).toBe(204);
    await expect
      .poll(async () => (await refresh(stack, tenant, ta.body.refresh_token as string)).body.error, {
        timeout: 5_000,
      })
      .toBe('invalid_grant');
    expect((await refresh(stack, tenant, tb.body.refresh_token as string)).status).toBe(200);
    expect(
      (await fetch(`${stack.consentUrl}/oauth2/grants/${ta.body.grant_id}`, { headers: auth })).status,
    ).toBe(404);
  });
});
