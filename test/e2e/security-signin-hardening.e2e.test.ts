import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { eventually } from '@grantline/testing';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  Agent,
  authorizationRequest,
  createTenant,
  hidden,
  loginPage,
  reachConsent,
  type Tenant,
} from './flow.ts';
import { type Stack, startStack } from './stack.ts';

/** Deletes this stack's Redis keys matching `pattern` (the Redis is shared by parallel tests: no FLUSHALL). */
const deleteKeys = async (redis: Redis, pattern: string) => {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
};

/** The session id inside the browser's session cookie (a JWS: its payload is readable). */
const sessionIdOf = (agent: Agent) => {
  const payload = agent.cookies.get('grantline_session')!.split('.')[1]!;
  return (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sid: string }).sid;
};

/** The value of one Prometheus counter series of the service, 0 when it has not been counted yet. */
const counter = async (url: string, name: string, labels: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').at(-1)) : 0;
};

/**
 * Issue 7, findings 4, 12 and 13: who the login limiter believes the client is, its global budget,
 * sign-outs that outlive a Redis flush, and single-use consent forms and verdicts. The stack's
 * authorization service sits behind the development gateway and trusts it (loopback), which says who
 * the client is. Two more instances, reached directly: one trusts no proxy, one believes
 * X-Forwarded-For from 127.0.0.1 as if behind a proxy there. All share the limiter's counts, reset
 * after each test.
 */
describe('issue 7: sign-in limits, sign-outs and single-use consent', () => {
  const GLOBAL_BUDGET = 8;
  let stack: Stack;
  /** the instance behind the "proxy", and its management listener (`/metrics`) */
  let proxied: string;
  let proxiedManagement: string;
  /** an instance that trusts no proxy */
  let untrusting: string;
  let tenant: Tenant;
  let redis: Redis;

  beforeAll(async () => {
    const infra = inject('infra');
    redis = new Redis(infra.redisUrl);
    stack = await startStack(infra, {
      LOGIN_FAILURES_PER_ADDRESS: '3',
      LOGIN_FAILURES_GLOBAL: String(GLOBAL_BUDGET),
    });
    const [instance, alone, created] = await Promise.all([
      stack.addAuthorizationInstance({ GRANTLINE_TRUSTED_PROXIES: '127.0.0.1' }),
      stack.addAuthorizationInstance({ GRANTLINE_TRUSTED_PROXIES: '' }),
      createTenant(stack),
    ]);
    [proxied, proxiedManagement, untrusting, tenant] = [
      instance.url,
      instance.managementUrl,
      alone.url,
      created,
    ];
  }, 120_000);
  afterEach(() => deleteKeys(redis, `grantline:${stack.topicPrefix}authz:login-*`));
  afterAll(async () => {
    redis?.disconnect();
    await stack?.stop();
  });

  /**
   * A sign-in with a wrong password for `username` at the instance at `url`, through a proxy saying
   * `forwardedFor`, from the local address `from` (default 127.0.0.1).
   */
  const failedSignIn = async (url: string, username: string, forwardedFor?: string, from?: string) => {
    const agent = new Agent();
    const page = await loginPage(agent, authorizationRequest(stack, tenant));
    const form = {
      login_challenge: hidden(page.text, 'login_challenge'),
      csrf_token: hidden(page.text, 'csrf_token'),
      username,
      password: 'not the password',
    };
    if (from) return postFrom(from, `${url}/login`, form, agent, forwardedFor);
    const posted = await agent.request(`${url}/login`, {
      form,
      ...(forwardedFor && { headers: { 'x-forwarded-for': forwardedFor } }),
    });
    return posted.status;
  };
  /** The sign-in form post from another loopback address (fetch cannot choose its local address). */
  const postFrom = (
    localAddress: string,
    url: string,
    form: Record<string, string>,
    agent: Agent,
    forwardedFor?: string,
  ) =>
    new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        url,
        {
          method: 'POST',
          localAddress,
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            cookie: [...agent.cookies].map(([k, v]) => `${k}=${v}`).join('; '),
            ...(forwardedFor && { 'x-forwarded-for': forwardedFor }),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(new URLSearchParams(form).toString());
    });
  const nobody = () => `nobody.${randomBytes(4).toString('hex')}`;
  const loginFailedEvents = async () =>
    Number(
      (await stack.db.pool.query(`SELECT count(*) AS n FROM authz.events WHERE type = 'LoginFailed'`)).rows[0]
        .n,
    );

  it('finding 4: X-Forwarded-For from an untrusted peer does not change the limited address', async () => {
    // each attempt claims another address, but the peer (127.0.0.1) is no trusted proxy: it is the address
    for (let i = 1; i <= 3; i++)
      expect(await failedSignIn(untrusting, nobody(), `198.51.100.${i}`)).toBe(401);
    expect(await failedSignIn(untrusting, nobody(), '198.51.100.4')).toBe(429);
  });

  it('finding 4: through the gateway, the limited address is the client’s own, whatever X-Forwarded-For it sends', async () => {
    // the gateway replaces the claimed addresses with the one it saw (127.0.0.2), which the service believes
    for (let i = 1; i <= 3; i++)
      expect(await failedSignIn(stack.issuer, nobody(), `198.51.100.${i}`, '127.0.0.2')).toBe(401);
    expect(await failedSignIn(stack.issuer, nobody(), '198.51.100.4', '127.0.0.2')).toBe(429);
    // another client behind the gateway is not locked out
    expect(await failedSignIn(stack.issuer, nobody(), '198.51.100.2', '127.0.0.3')).toBe(401);
  });

  it('finding 4: with GRANTLINE_TRUSTED_PROXIES covering 127.0.0.1, X-Forwarded-For is the limited address', async () => {
    for (let i = 0; i < 3; i++) expect(await failedSignIn(proxied, nobody(), '203.0.113.1')).toBe(401);
    expect(await failedSignIn(proxied, nobody(), '203.0.113.1')).toBe(429);
    // another client behind the same proxy is not locked out
    expect(await failedSignIn(proxied, nobody(), '203.0.113.2')).toBe(401);
  });

  it('finding 4: an attempt refused by the lock-out appends no event, and is counted in a metric', async () => {
    const series = 'grantline_limit="address"';
    for (let i = 0; i < 3; i++) expect(await failedSignIn(proxied, nobody(), '203.0.113.3')).toBe(401);
    const [events, refused] = [
      await loginFailedEvents(),
      await counter(proxiedManagement, 'grantline_limiter_refused_total', series),
    ];
    for (let i = 0; i < 3; i++) expect(await failedSignIn(proxied, nobody(), '203.0.113.3')).toBe(429);
    expect(await loginFailedEvents()).toBe(events);
    expect(await counter(proxiedManagement, 'grantline_limiter_refused_total', series)).toBe(refused + 3);
  });

  it('finding 4: the global budget refuses a spray of distinct usernames from distinct addresses', async () => {
    const statuses: number[] = [];
    for (let i = 0; i <= GLOBAL_BUDGET; i++)
      statuses.push(await failedSignIn(proxied, nobody(), `192.0.2.${10 + i}`));
    // every attempt is a fresh username from a fresh address: only the global budget can refuse one
    expect(statuses).toEqual([...Array(GLOBAL_BUDGET).fill(401), 429]);
  });

  it('finding 12: a signed-out session stays signed out after Redis loses its data', async () => {
    const agent = new Agent();
    const consent = await reachConsent(
      stack,
      tenant,
      agent,
      authorizationRequest(stack, tenant, { prompt: 'consent' }),
    );
    const challenge = hidden(consent.text, 'consent_challenge');
    const copied = new Map(agent.cookies);
    const sid = sessionIdOf(agent);
    const logout = await agent.request(`${stack.issuer}/logout`);
    expect(
      (
        await agent.request(`${stack.issuer}/logout`, {
          form: { csrf_token: hidden(logout.text, 'csrf_token') },
        })
      ).status,
    ).toBe(200);
    // the consent service has learnt of the sign-out from the event (as it has, long before a real Redis loss)
    await eventually(
      async () =>
        (await stack.db.pool.query('SELECT 1 FROM consent.ended_sessions WHERE session_id = $1', [sid]))
          .rowCount === 1 || undefined,
      { what: 'the consent service to project the sign-out' },
    );
    await deleteKeys(redis, `grantline:${stack.topicPrefix}*`);

    const replay = new Agent();
    for (const [k, v] of copied) replay.cookies.set(k, v);
    const again = await replay.request(authorizationRequest(stack, tenant, { prompt: 'consent' }));
    expect(new URL(again.location!).pathname).toBe('/login');
    const page = await replay.request(
      `${stack.consentUrl}/consent?consent_challenge=${encodeURIComponent(challenge)}`,
    );
    expect(page.status).toBe(400);
    expect(page.text).not.toContain('name="consent_challenge"');
  });

  it('finding 12: signing out while Redis is unreachable still ends the session (the event comes first)', async () => {
    const noRedis = await stack.addAuthorizationInstance({ REDIS_URL: 'redis://127.0.0.1:1' });
    const agent = new Agent();
    await reachConsent(stack, tenant, agent, authorizationRequest(stack, tenant, { prompt: 'consent' }));
    const copied = new Map(agent.cookies);
    const logout = await agent.request(`${noRedis.url}/logout`);
    const out = await agent.request(`${noRedis.url}/logout`, {
      form: { csrf_token: hidden(logout.text, 'csrf_token') },
    });
    expect(out.status).toBe(200);
    const replay = new Agent();
    for (const [k, v] of copied) replay.cookies.set(k, v);
    const again = await replay.request(authorizationRequest(stack, tenant, { prompt: 'consent' }));
    expect(new URL(again.location!).pathname).toBe('/login');
  });

  it('finding 13: a consent form is decided once: a second POST of it is refused', async () => {
    const agent = new Agent();
    const page = await reachConsent(
      stack,
      tenant,
      agent,
      authorizationRequest(stack, tenant, { prompt: 'consent' }),
    );
    const form = {
      consent_challenge: hidden(page.text, 'consent_challenge'),
      csrf_token: hidden(page.text, 'csrf_token'),
      organisation: [tenant.organisations[0]!.id],
      decision: 'allow',
    };
    const first = await agent.request(`${stack.consentUrl}/consent`, { form });
    expect(first.status).toBe(303);
    expect(new URL(first.location!).searchParams.get('consent_verdict')).toBeTruthy();
    const second = await agent.request(`${stack.consentUrl}/consent`, { form });
    expect(second.status).toBe(403);
    expect(second.location).toBeUndefined();
    expect(second.text).toContain('already sent');
  });

  it('finding 13: a consent verdict is used once: a second use at the completion endpoint gets no code', async () => {
    const agent = new Agent();
    const page = await reachConsent(
      stack,
      tenant,
      agent,
      authorizationRequest(stack, tenant, { prompt: 'consent' }),
    );
    const decided = await agent.request(`${stack.consentUrl}/consent`, {
      form: {
        consent_challenge: hidden(page.text, 'consent_challenge'),
        csrf_token: hidden(page.text, 'csrf_token'),
        organisation: [tenant.organisations[0]!.id],
        decision: 'allow',
      },
    });
    const completion = decided.location!;
    const first = await agent.request(completion);
    expect(first.status).toBe(303);
    expect(new URL(first.location!).searchParams.get('code')).toBeTruthy();
    const second = await agent.request(completion);
    expect(second.status).toBe(400);
    expect(second.location).toBeUndefined();
    expect(second.text).toContain('already been used');
  });
});
