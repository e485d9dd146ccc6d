import type { Server } from 'node:http';
import { invoicesApi } from '@grantline/example-resource-server';
import { freePort } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  Agent,
  authorizationRequest,
  createTenant,
  hidden,
  loginPage,
  pkce,
  reachConsent,
  redeem,
  runFlow,
  type Tenant,
} from './flow.ts';
import { type Stack, startStack } from './stack.ts';

/**
 * ../shared/research/security.md items 1 to 9, 11 to 16 and 42 to 44 (authorization endpoint, redirects,
 * PKCE, login and consent pages) as black-box tests, named by item number.
 */
describe('security checklist: authorization endpoint, PKCE, login and consent pages', () => {
  let stack: Stack;
  let tenant: Tenant;
  let issuer: string;
  /** a valid request; tests override one parameter at a time */
  const request = (overrides: Record<string, string | undefined> = {}) =>
    authorizationRequest(stack, tenant, overrides);
  const get = (url: string, headers: Record<string, string> = {}) =>
    fetch(url, { redirect: 'manual', headers });
  const expectPageWithoutRedirect = async (res: Response, status = 400) => {
    expect(res.status).toBe(status);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  };
  const redirectParams = (res: Response) => {
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get('location')!);
    expect(location.origin + location.pathname).toBe(tenant.client.redirect_uri);
    return location.searchParams;
  };

  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    tenant = await createTenant(stack);
    issuer = stack.issuer;
  }, 120_000);
  afterAll(() => stack?.stop());

  it('item 1: only the exact registered redirect_uri is accepted; near misses get an HTML page and no redirect', async () => {
    for (const uri of [
      'https://app.example/cb/',
      'https://app.example/cb?x=1',
      'HTTPS://APP.EXAMPLE/cb',
      'https://app.example/cb/../x',
      'https://app.example:8443/cb',
      'https://app.example/cb#frag',
      'https://app.example.evil.test/cb',
      'https://app.example@evil.test/cb',
    ]) {
      await expectPageWithoutRedirect(await get(request({ redirect_uri: uri })));
    }
  });

  it('item 1: a native client on loopback may vary only the port', async () => {
    const native = await createTenant(stack, {
      redirect_uris: ['http://127.0.0.1/callback'],
      token_endpoint_auth_method: 'none',
    });
    const url = (uri: string) => request({ client_id: native.client.client_id, redirect_uri: uri });
    expect((await get(url('http://127.0.0.1:51234/callback'))).status).toBe(303);
    expect(
      new URL((await get(url('http://127.0.0.1:51234/callback'))).headers.get('location')!, issuer).pathname,
    ).toBe('/login');
    await expectPageWithoutRedirect(await get(url('http://127.0.0.1:51234/other')));
    await expectPageWithoutRedirect(await get(url('http://localhost:51234/callback')));
  });

  it('item 2: an unknown client_id, or a missing redirect_uri when several are registered, never redirects', async () => {
    await expectPageWithoutRedirect(await get(request({ client_id: 'unknown' })));
    await expectPageWithoutRedirect(await get(request({ client_id: undefined })));
    const two = await createTenant(stack, {
      redirect_uris: ['https://a.example/cb', 'https://b.example/cb'],
    });
    await expectPageWithoutRedirect(
      await get(request({ client_id: two.client.client_id, redirect_uri: undefined })),
    );
  });

  it('item 3: other errors go back to the registered URI with error, state and iss', async () => {
    const params = redirectParams(await get(request({ scope: 'bogus' })));
    expect(params.get('error')).toBe('invalid_scope');
    expect(params.get('state')).toBe('xyz');
    expect(params.get('iss')).toBe(issuer);
  });

  it('item 4: no open redirector: login has no return_to, and an unauthenticated request goes to sign-in', async () => {
    const evil = await get(`${issuer}/login?return_to=https://evil.test/`);
    await expectPageWithoutRedirect(evil);
    const unauthenticated = await get(request());
    expect(unauthenticated.status).toBe(303);
    const login = new URL(unauthenticated.headers.get('location')!, issuer);
    expect(login.origin).toBe(issuer);
    expect(login.pathname).toBe('/login');
    const none = redirectParams(await get(request({ prompt: 'none' })));
    expect(none.get('error')).toBe('login_required');
    expect(none.get('iss')).toBe(issuer);
  });

  it('item 5: state comes back byte for byte, long values too, and is omitted when absent', async () => {
    const long = `${'a'.repeat(500)}~!*()'.-_ %20+&=${'z'.repeat(480)}`;
    expect(redirectParams(await get(request({ state: long, scope: 'bogus' }))).get('state')).toBe(long);
    const flow = await runFlow(stack, tenant, { params: { state: long } });
    expect(flow.location?.searchParams.get('state')).toBe(long);
    expect(redirectParams(await get(request({ state: undefined, scope: 'bogus' }))).has('state')).toBe(false);
  });

  it('item 6: every authorization response carries iss equal to the metadata issuer', async () => {
    const meta = (await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(meta.authorization_response_iss_parameter_supported).toBe(true);
    const success = await runFlow(stack, tenant);
    expect(success.code).toBeTruthy();
    expect(success.location?.searchParams.get('iss')).toBe(meta.issuer);
    const denied = await runFlow(stack, tenant, { decision: 'deny', params: { prompt: 'consent' } });
    expect(denied.location?.searchParams.get('iss')).toBe(meta.issuer);
  });

  it('item 7: response_type=token and hybrids are refused, with no token in a fragment', async () => {
    for (const responseType of ['token', 'code token', 'id_token token']) {
      const res = await get(request({ response_type: responseType }));
      const location = res.headers.get('location')!;
      expect(new URL(location).searchParams.get('error')).toBe('unsupported_response_type');
      expect(location).not.toContain('#');
      expect(location).not.toContain('access_token');
    }
  });

  it('item 7: the resource server takes the token from the Authorization header only, never the query', async () => {
    const port = await freePort();
    const api = invoicesApi({ issuer, jwksUri: `${stack.tokenUrl}/oauth2/jwks`, audience: issuer });
    const server = await new Promise<Server>((ok) => {
      const s = api.listen(port, '127.0.0.1', () => ok(s));
    });
    try {
      const flow = await runFlow(stack, tenant);
      const token = (await redeem(stack, tenant, flow.code!, flow.verifier)).body.access_token as string;
      const url = `http://127.0.0.1:${port}/organisations/${tenant.organisations[0]!.id}/invoices`;
      const inQuery = await fetch(`${url}?access_token=${token}`);
      expect(inQuery.status).toBe(401);
      expect(inQuery.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    } finally {
      await new Promise((ok) => server.close(ok));
    }
  });

  it('item 8: duplicate parameters are refused; unknown ones are ignored', async () => {
    await expectPageWithoutRedirect(await get(`${request()}&client_id=${tenant.client.client_id}`));
    expect(redirectParams(await get(`${request()}&scope=invoices.read`)).get('error')).toBe(
      'invalid_request',
    );
    const unknown = await get(`${request()}&foo=bar`);
    expect(unknown.status).toBe(303);
    expect(new URL(unknown.headers.get('location')!, issuer).pathname).toBe('/login');
  });

  it('item 9: http redirect URIs are refused at registration, except loopback', async () => {
    const res = await fetch(`${stack.registryUrl}/oauth2/register`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await stack.initialAccessToken()}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ redirect_uris: ['http://app.example/cb'], token_endpoint_auth_method: 'none' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_redirect_uri');
  });

  it('item 11: no CORS on the authorization endpoint', async () => {
    for (const res of [
      await get(request(), { origin: 'https://x.test' }),
      await get(request({ client_id: 'nope' }), { origin: 'https://x.test' }),
    ])
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${issuer}/oauth2/authorize`, {
      method: 'OPTIONS',
      headers: { origin: 'https://x.test', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('items 12 and 42: login, consent and error pages send Referrer-Policy no-referrer and refuse framing', async () => {
    const login = await loginPage(new Agent(), request());
    const consentPage = await reachConsent(stack, tenant, new Agent(), request({ prompt: 'consent' }));
    expect(consentPage.text).toContain('name="consent_challenge"');
    const error = await get(request({ client_id: 'unknown' }));
    for (const headers of [login.headers, consentPage.headers, error.headers]) {
      expect(headers.get('referrer-policy')).toBe('no-referrer');
      expect(headers.get('x-frame-options')).toBe('DENY');
      expect(headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    }
  });

  it('item 13: PKCE is required: no code_challenge gives invalid_request with state and iss', async () => {
    const params = redirectParams(await get(request({ code_challenge: undefined })));
    expect(params.get('error')).toBe('invalid_request');
    expect(params.get('state')).toBe('xyz');
    expect(params.get('iss')).toBe(issuer);
  });

  it('item 14: only S256: plain or a missing method is refused, and the metadata says so', async () => {
    expect(redirectParams(await get(request({ code_challenge_method: 'plain' }))).get('error')).toBe(
      'invalid_request',
    );
    expect(redirectParams(await get(request({ code_challenge_method: undefined }))).get('error')).toBe(
      'invalid_request',
    );
    const meta = (await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
  });

  it('items 15 and 16: a missing, wrong or malformed code_verifier is invalid_grant; no verifier-less code exists', async () => {
    const flow = await runFlow(stack, tenant);
    const code = flow.code!;
    expect((await redeem(stack, tenant, code, '')).body.error).toBe('invalid_grant');
    expect((await redeem(stack, tenant, code, 'a')).body.error).toBe('invalid_grant');
    expect((await redeem(stack, tenant, code, pkce().verifier)).body.error).toBe('invalid_grant');
    expect((await redeem(stack, tenant, code, `${flow.verifier}!`)).body.error).toBe('invalid_grant');
    // none of these spent the code (item 18): the right verifier still works once
    expect((await redeem(stack, tenant, code, flow.verifier)).status).toBe(200);
    // item 16: a request without a challenge never yields a code to downgrade
    expect(
      redirectParams(await get(request({ code_challenge: undefined, code_challenge_method: undefined }))).has(
        'code',
      ),
    ).toBe(false);
  });

  it('item 43: a consent POST without the CSRF token, or with another session’s, is 403 and issues no code', async () => {
    const victim = new Agent();
    const attacker = new Agent();
    const victimPage = await reachConsent(stack, tenant, victim, request({ prompt: 'consent' }));
    const attackerPage = await reachConsent(stack, tenant, attacker, request({ prompt: 'consent' }));
    const allow = (agent: Agent, challengeValue: string, csrf: string | undefined) =>
      agent.request(`${stack.consentUrl}/consent`, {
        form: {
          consent_challenge: challengeValue,
          ...(csrf !== undefined && { csrf_token: csrf }),
          organisation: tenant.organisations[0]!.id,
          decision: 'allow',
        },
      });
    const missing = await allow(victim, hidden(victimPage.text, 'consent_challenge'), undefined);
    expect(missing.status).toBe(403);
    expect(missing.location).toBeUndefined();
    const foreign = await allow(
      victim,
      hidden(victimPage.text, 'consent_challenge'),
      hidden(attackerPage.text, 'csrf_token'),
    );
    expect(foreign.status).toBe(403);
    expect(foreign.location).toBeUndefined();
    // the attacker's own challenge and token, posted from the victim's browser (cross-session)
    const swapped = await allow(
      victim,
      hidden(attackerPage.text, 'consent_challenge'),
      hidden(attackerPage.text, 'csrf_token'),
    );
    expect(swapped.status).toBe(403);
    // the login form is protected the same way
    const fresh = new Agent();
    const login = await loginPage(fresh, request());
    const noCsrf = await fresh.request(`${issuer}/login`, {
      form: {
        login_challenge: hidden(login.text, 'login_challenge'),
        username: tenant.user.username,
        password: tenant.user.password,
      },
    });
    expect(noCsrf.status).toBe(403);
  });

  it('item 44: Deny sends access_denied with state and iss; the page shows the client and its scopes', async () => {
    const agent = new Agent();
    const step = await reachConsent(
      stack,
      tenant,
      agent,
      request({ prompt: 'consent', scope: 'invoices.read invoices.write' }),
    );
    expect(step.text).toContain('Ledger App');
    expect(step.text).toContain('Read your invoices');
    expect(step.text).toContain('Create and edit invoices');
    for (const o of tenant.organisations) expect(step.text).toContain(o.name);
    const denied = await agent.request(`${stack.consentUrl}/consent`, {
      form: {
        consent_challenge: hidden(step.text, 'consent_challenge'),
        csrf_token: hidden(step.text, 'csrf_token'),
        decision: 'deny',
      },
    });
    const back = await agent.request(denied.location!);
    const params = new URL(back.location!).searchParams;
    expect(params.get('error')).toBe('access_denied');
    expect(params.get('state')).toBe('xyz');
    expect(params.get('iss')).toBe(issuer);
    expect(params.has('code')).toBe(false);
  });
});
