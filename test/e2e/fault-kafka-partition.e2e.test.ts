import type { AddressInfo } from 'node:net';
import { connect as dial } from 'node:net';
import { invoicesApi } from '@grantline/example-resource-server';
import {
  connectResourceServer,
  type RevocationSubscriber,
  type StalenessPolicy,
} from '@grantline/resource-server';
import { eventually, startTcpProxy, type TcpProxy } from '@grantline/testing';
import type { ISocketFactory } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTenant, redeem, runFlow, type Tenant } from './flow.ts';
import { basic, type Stack, startStack } from './stack.ts';

const API = 'https://invoices.example/';
// two heartbeat periods: one late heartbeat is not an outage
const BUDGET_SECONDS = 2;

/**
 * security.md F9: a partition between one resource server and Kafka only. The SDK's Kafka
 * subscriber reaches the (real, shared) broker through a TCP proxy the test cuts; the rest of the
 * stack keeps its own connections, so revocations go on being recorded and published meanwhile.
 */
describe('F9: a partition between a resource server and Kafka', () => {
  let stack: Stack;
  let tenant: Tenant;
  let rs: { client_id: string; client_secret: string };
  const proxies = new Map<number, TcpProxy>();
  const apis: { policy: StalenessPolicy; url: string; subscriber: RevocationSubscriber; close(): void }[] =
    [];

  /** every broker connection of the SDK, whichever broker the metadata names, dials its proxy */
  const throughProxy: ISocketFactory = ({ port, onConnect }) => {
    const proxy = proxies.get(port) ?? [...proxies.values()][0]!;
    const socket = dial(proxy.port, '127.0.0.1', onConnect);
    socket.setKeepAlive(true, 60_000);
    return socket;
  };

  const startApi = async (policy: StalenessPolicy) => {
    const { options, subscriber } = await connectResourceServer({
      issuer: stack.issuer,
      audience: API,
      clientId: rs.client_id,
      clientSecret: rs.client_secret,
      policy,
      freshnessBudgetSeconds: BUDGET_SECONDS,
      kafka: {
        brokers: inject('infra').kafkaBrokers,
        topicPrefix: stack.topicPrefix,
        connection: { socketFactory: throughProxy, connectionTimeout: 1_000 },
      },
    });
    const server = invoicesApi(options).listen(0, '127.0.0.1');
    await new Promise((ok) => server.once('listening', ok));
    const api = {
      policy,
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      subscriber,
      close: () => {
        server.close();
        void subscriber.close();
      },
    };
    apis.push(api);
    return api;
  };

  beforeAll(async () => {
    for (const broker of inject('infra').kafkaBrokers) {
      const [host, port] = broker.split(':') as [string, string];
      proxies.set(Number(port), await startTcpProxy({ host, port: Number(port) }));
    }
    stack = await startStack(inject('infra'));
    rs = await stack.registerResourceServer([API], 'Invoices API');
    tenant = await createTenant(stack, { resources: [API] });
  }, 120_000);
  afterAll(async () => {
    for (const api of apis) api.close();
    for (const proxy of proxies.values()) await proxy.close();
    await stack?.stop();
  });

  const cut = () => {
    for (const p of proxies.values()) p.cut('reset');
  };
  const heal = () => {
    for (const p of proxies.values()) p.heal();
  };
  const tokens = async (organisations: string[]) => {
    const flow = await runFlow(stack, tenant, {
      organisations,
      params: { grant_management_action: 'create' },
    });
    const res = await redeem(stack, tenant, flow.code!, flow.verifier);
    expect(res.status).toBe(200);
    return res.body as { access_token: string };
  };
  const call = async (url: string, token: string, organisation: string) => {
    const started = Date.now();
    const res = await fetch(`${url}/organisations/${organisation}/invoices`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), ms: Date.now() - started };
  };

  it('F9: the SDK turns stale within its budget, fails closed with 503 + Retry-After or introspects, and once healed is fresh again and rejects a token revoked during the partition', async () => {
    const closed = await startApi('fail-closed');
    const introspecting = await startApi('introspect');
    const acme = tenant.organisations[0]!.id;
    const kept = (await tokens([acme])).access_token;
    const doomed = (await tokens([acme])).access_token;
    for (const api of [closed, introspecting]) {
      expect(api.subscriber.denyList.isFresh(BUDGET_SECONDS * 1_000)).toBe(true);
      expect((await call(api.url, kept, acme)).status).toBe(200);
      expect((await call(api.url, doomed, acme)).status).toBe(200);
    }

    const cutAt = Date.now();
    cut();
    // stale within the budget (plus one heartbeat period of slack), as the SDK reports it
    for (const api of [closed, introspecting])
      await eventually(() => (api.subscriber.denyList.isFresh(BUDGET_SECONDS * 1_000) ? undefined : true), {
        timeoutMs: BUDGET_SECONDS * 1_000 + 1_500,
        intervalMs: 20,
        what: `the ${api.policy} subscriber to report itself stale`,
      });
    const staleAfterMs = Date.now() - cutAt;
    expect(staleAfterMs).toBeLessThan(BUDGET_SECONDS * 1_000 + 1_500);

    // fail-closed: 503 + Retry-After, answered at once (no hang on the broker)
    const refused = await call(closed.url, kept, acme);
    expect(refused.status).toBe(503);
    expect(Number(refused.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(refused.ms).toBeLessThan(1_000);

    // a revocation while the resource server cannot hear it: the rest of the stack records it
    const revoked = await fetch(`${stack.tokenUrl}/oauth2/revoke`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: basic(tenant.client.client_id, tenant.client.client_secret!),
      },
      body: new URLSearchParams({ token: doomed, token_type_hint: 'access_token' }),
    });
    expect(revoked.status).toBe(200);

    // introspect: answers through RFC 7662, which knows of the revocation the deny-list missed
    expect((await call(introspecting.url, kept, acme)).status).toBe(200);
    await eventually(
      async () => ((await call(introspecting.url, doomed, acme)).status === 401 ? true : undefined),
      { what: 'introspection to deny the token revoked during the partition' },
    );
    expect((await call(closed.url, doomed, acme)).status).toBe(503);
    for (const api of [closed, introspecting])
      expect(api.subscriber.denyList.isFresh(BUDGET_SECONDS * 1_000)).toBe(false);

    heal();
    const healedAt = Date.now();
    for (const api of [closed, introspecting]) {
      await eventually(() => (api.subscriber.denyList.isFresh(BUDGET_SECONDS * 1_000) ? true : undefined), {
        timeoutMs: 60_000,
        intervalMs: 10,
        what: `the ${api.policy} subscriber to be fresh again`,
      });
      // checked at the first moment it calls itself fresh: the fact must already be there
      expect(api.subscriber.denyList.revoked([`jti:${jtiOf(doomed)}`])).toBeDefined();
      expect((await call(api.url, doomed, acme)).status).toBe(401);
      expect((await call(api.url, kept, acme)).status).toBe(200);
    }
    console.info(
      `F9: stale ${staleAfterMs} ms after the cut (budget ${BUDGET_SECONDS * 1_000} ms); fresh again ${Date.now() - healedAt} ms after healing`,
    );
  });
});

const jtiOf = (jwt: string) =>
  (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;
