import { Writable } from 'node:stream';
import { eventually } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  Agent,
  authorizeUrl,
  createTenant,
  hidden,
  loginPage,
  pkce,
  redeem,
  refresh,
  submitLogin,
} from './flow.ts';
import { ADMIN_TOKEN, basic, type Stack, startStack, tokenRequest } from './stack.ts';

interface LogLine {
  name: string;
  msg: string;
  req?: Record<string, unknown>;
  res?: Record<string, unknown>;
  responseTime?: number;
}

/** What a JSON log line of each service says, read from the services' own log streams. */
const capture = () => {
  const text: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      text.push(String(chunk));
      done();
    },
  });
  const lines = () =>
    text
      .join('')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as LogLine);
  return { destination, text: () => text.join(''), lines };
};

/** A credential and the parts of it that would leak it alone (a JWT's payload and signature). */
const fragments = (value: string) => [
  value,
  ...value
    .split('.')
    .slice(1)
    .filter((p) => p.length >= 16),
];

describe('request logs', () => {
  const logs = capture();
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(inject('infra'), { LOG_LEVEL: 'info' }, { logDestination: logs.destination });
  }, 120_000);
  afterAll(() => stack?.stop());

  it('finding 8: a full flow leaves no code, token, secret, challenge, verdict or password in the logs', async () => {
    const secrets: Record<string, string> = { adminToken: ADMIN_TOKEN };
    const tenant = await createTenant(stack);
    secrets.password = tenant.user.password;
    secrets.clientSecret = tenant.client.client_secret!;
    secrets.registrationToken = (tenant.client as Record<string, string>).registration_access_token!;
    secrets.initialAccessToken = await stack.initialAccessToken();

    // RFC 7591 and RFC 7592 with the registration access token; client credentials
    const machine = await stack.register({
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'invoices.read',
    });
    secrets.machineSecret = machine.client_secret!;
    secrets.machineRegistrationToken = machine.registration_access_token!;
    const read = await fetch(`${stack.registryUrl}/oauth2/register/${machine.client_id}`, {
      headers: { authorization: `Bearer ${machine.registration_access_token}` },
    });
    expect(read.status).toBe(200);
    const cc = await tokenRequest(
      stack,
      { grant_type: 'client_credentials' },
      { authorization: basic(machine.client_id, machine.client_secret!) },
    );
    expect(cc.status).toBe(200);
    secrets.clientCredentialsToken = cc.body.access_token as string;

    // authorization code with PKCE through the sign-in and consent pages
    const agent = new Agent();
    const { verifier, challenge } = pkce();
    secrets.verifier = verifier;
    const login = await loginPage(
      agent,
      authorizeUrl(stack, {
        response_type: 'code',
        client_id: tenant.client.client_id,
        redirect_uri: tenant.client.redirect_uri,
        scope: 'invoices.read',
        state: 'log-state',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }),
    );
    secrets.loginChallenge = hidden(login.text, 'login_challenge');
    secrets.loginCsrf = hidden(login.text, 'csrf_token');
    let step = await submitLogin(stack, agent, login, tenant.user);
    for (let hops = 0; hops < 5 && !step.text.includes('name="consent_challenge"'); hops++)
      step = await agent.request(step.location!);
    secrets.consentChallenge = hidden(step.text, 'consent_challenge');
    secrets.consentCsrf = hidden(step.text, 'csrf_token');
    for (const [name, value] of agent.cookies) secrets[`cookie ${name}`] = value;
    const consented = await agent.request(`${stack.consentUrl}/consent`, {
      form: {
        consent_challenge: secrets.consentChallenge,
        csrf_token: secrets.consentCsrf,
        organisation: tenant.organisations[0]!.id,
        decision: 'allow',
      },
    });
    expect(consented.status).toBe(303);
    secrets.verdict = new URL(consented.location!).searchParams.get('consent_verdict')!;
    const back = await agent.request(consented.location!);
    const code = new URL(back.location!).searchParams.get('code')!;
    secrets.code = code;

    const redeemed = await redeem(stack, tenant, code, verifier);
    expect(redeemed.status).toBe(200);
    secrets.accessToken = redeemed.body.access_token as string;
    secrets.refreshToken = redeemed.body.refresh_token as string;
    const refreshed = await refresh(stack, tenant, secrets.refreshToken);
    expect(refreshed.status).toBe(200);
    secrets.refreshedAccessToken = refreshed.body.access_token as string;
    secrets.refreshedRefreshToken = refreshed.body.refresh_token as string;
    const grant = await fetch(`${stack.consentUrl}/oauth2/grants/${redeemed.body.grant_id}`, {
      headers: { authorization: basic(tenant.client.client_id, tenant.client.client_secret!) },
    });
    expect(grant.status).toBe(200);

    // a request line per request, from every service the flow went through
    const requestLines = () => logs.lines().filter((l) => l.req && l.res);
    const seen = (service: string, method: string, path: string, status: number) =>
      requestLines().filter(
        (l) =>
          l.name === service &&
          l.req!.method === method &&
          l.req!.path === path &&
          l.res!.statusCode === status,
      ).length;
    await eventually(
      () =>
        seen('token', 'POST', '/oauth2/token', 200) === 3 &&
        seen('registry', 'GET', `/oauth2/register/${machine.client_id}`, 200) === 1 &&
        seen('authorization', 'GET', '/oauth2/authorize', 303) >= 1 &&
        seen('authorization', 'POST', '/login', 303) === 1 &&
        seen('consent', 'POST', '/consent', 303) === 1 &&
        seen('consent', 'GET', `/oauth2/grants/${redeemed.body.grant_id}`, 200) === 1
          ? true
          : undefined,
      { what: 'a request line per request', timeoutMs: 5_000 },
    );

    const text = logs.text();
    for (const [name, value] of Object.entries(secrets)) {
      expect(value, name).toBeTruthy();
      for (const part of fragments(value)) expect(text.includes(part), `${name} in the logs`).toBe(false);
    }
    // what a request line holds: method, path, status and timing; no headers, no query
    for (const line of requestLines()) {
      expect(Object.keys(line.req!).sort()).toEqual(['id', 'method', 'path']);
      expect(Object.keys(line.res!)).toEqual(['statusCode']);
      expect(line.req!.path).not.toContain('?');
      expect(line.responseTime).toBeTypeOf('number');
    }
  });
});
