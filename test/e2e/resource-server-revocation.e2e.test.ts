import type { AddressInfo } from 'node:net';
import { invoicesApi } from '@grantline/example-resource-server';
import { connectResourceServer } from '@grantline/resource-server';
import { eventually } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Agent, createTenant, redeem, refresh, runFlow, type Tenant } from './flow.ts';
import {
  type InvoicesApi,
  invoices as invoicesAt,
  rejectedWithin as rejectedAt,
  startInvoicesApis,
} from './invoices-api.ts';
import { type Stack, startStack } from './stack.ts';

/**
 * The example invoices API (examples/resource-server, started in-process with the SDK) against the
 * distributed stack: it registers itself as a resource-server client, bootstraps its deny-list from
 * the revocation stream, and stops honouring what the user disconnects within a second (security.md
 * item 35, with T = 1 s rather than the checklist's 5 s), and nothing else.
 */
describe('resource servers: disconnects reach the example invoices API', () => {
  let stack: Stack;
  let apis: Awaited<ReturnType<typeof startInvoicesApis>>;
  let api: InvoicesApi;
  /** the same API subscribed to grantline.revocations.v1 on Kafka instead of the HTTP stream */
  let kafkaApi: InvoicesApi;
  let tenant: Tenant;

  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    apis = await startInvoicesApis(stack, inject('infra'));
    ({ stream: api, kafka: kafkaApi } = apis);
    // the app's tokens are for both (every resource it registered, when it asks for none)
    tenant = await createTenant(stack, { resources: [api.url, kafkaApi.url] });
  }, 120_000);
  afterAll(async () => {
    await apis?.stop();
    await stack?.stop();
  });

  const invoices = (token: string, organisation: string, at = api) => invoicesAt(at, token, organisation);
  const rejectedWithin = (token: string, organisation: string, at = api) =>
    rejectedAt(at, token, organisation);
  const connections = (agent: Agent, path: string, method = 'GET', csrf?: string) =>
    agent.request(`${stack.issuer}/account/api/connections${path}`, {
      method,
      headers: csrf ? { origin: stack.issuer, 'x-csrf-token': csrf } : {},
    });

  it('item 35: disconnecting one organisation rejects the old token for it within 1 s and keeps serving the other; disconnecting the app rejects everything (the HTTP stream and Kafka)', async () => {
    const [acme, globex, initech] = tenant.organisations.map((o) => o.id) as [string, string, string];
    const flow = await runFlow(stack, tenant, { organisations: [acme, globex] });
    const tokens = await redeem(stack, tenant, flow.code!, flow.verifier);
    expect(tokens.status).toBe(200);
    const { access_token, grant_id } = tokens.body as { access_token: string; grant_id: string };

    for (const at of [api, kafkaApi]) {
      expect((await invoices(access_token, acme, at)).status).toBe(200);
      expect(await (await invoices(access_token, globex, at)).json()).toMatchObject({ organisation: globex });
    }
    const notConnected = await invoices(access_token, initech);
    expect(notConnected.status).toBe(403);
    expect(notConnected.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_scope"/);

    const { csrf_token } = JSON.parse((await connections(flow.agent, '')).text) as { csrf_token: string };
    const client = tenant.client.client_id;
    const org = await connections(
      flow.agent,
      `/${client}/grants/${grant_id}/organisations/${acme}`,
      'DELETE',
      csrf_token,
    );
    expect(org.status).toBe(204);
    const [viaStream, viaKafka] = await Promise.all([
      rejectedWithin(access_token, acme, api),
      rejectedWithin(access_token, acme, kafkaApi),
    ]);
    expect(viaStream).toBeLessThan(1_000);
    expect(viaKafka).toBeLessThan(1_000);
    expect((await invoices(access_token, globex, api)).status).toBe(200);
    expect((await invoices(access_token, globex, kafkaApi)).status).toBe(200);

    const app = await connections(flow.agent, `/${client}`, 'DELETE', csrf_token);
    expect(app.status).toBe(204);
    expect(await rejectedWithin(access_token, globex, api)).toBeLessThan(1_000);
    expect(await rejectedWithin(access_token, globex, kafkaApi)).toBeLessThan(1_000);
    expect((await invoices(access_token, acme)).status).toBe(401);
  });

  it('items 17 and 28: the access tokens of a replayed code and of a reused refresh family are rejected at the API within 1 s (the HTTP stream and Kafka)', async () => {
    const [acme] = tenant.organisations.map((o) => o.id) as [string];
    const newGrant = { organisations: [acme], params: { grant_management_action: 'create' } };
    // item 17: the code redeemed twice; what the first redemption issued stops working
    const replayed = await runFlow(stack, tenant, newGrant);
    const first = await redeem(stack, tenant, replayed.code!, replayed.verifier);
    expect(first.status).toBe(200);
    const codeToken = first.body.access_token as string;
    for (const at of [api, kafkaApi]) expect((await invoices(codeToken, acme, at)).status).toBe(200);
    expect((await redeem(stack, tenant, replayed.code!, replayed.verifier)).body.error).toBe('invalid_grant');
    for (const at of [api, kafkaApi]) await rejectedWithin(codeToken, acme, at);
    // item 28: RT0 rotated to RT1, then RT0 again; the family's access tokens, old and new, stop working
    const flow = await runFlow(stack, tenant, newGrant);
    const issued = await redeem(stack, tenant, flow.code!, flow.verifier);
    const rt0 = issued.body.refresh_token as string;
    const rotated = await refresh(stack, tenant, rt0);
    expect(rotated.status).toBe(200);
    const family = [issued.body.access_token as string, rotated.body.access_token as string];
    for (const token of family)
      for (const at of [api, kafkaApi]) expect((await invoices(token, acme, at)).status).toBe(200);
    expect((await refresh(stack, tenant, rt0)).body.error).toBe('invalid_grant');
    for (const token of family) for (const at of [api, kafkaApi]) await rejectedWithin(token, acme, at);
  });

  it('introspect policy: with its deny-list gone stale the API asks RFC 7662 introspection, which agrees about a disconnected organisation', async () => {
    const [acme, globex] = tenant.organisations.map((o) => o.id) as [string, string];
    const flow = await runFlow(stack, tenant, {
      organisations: [acme, globex],
      params: { grant_management_action: 'create' },
    });
    const tokens = await redeem(stack, tenant, flow.code!, flow.verifier);
    const { access_token, grant_id } = tokens.body as { access_token: string; grant_id: string };
    // a second instance of the API with its own subscriber, which the test then cuts off
    const cut = await connectResourceServer({
      issuer: stack.issuer,
      audience: api.url,
      clientId: api.clientId,
      clientSecret: api.clientSecret,
      policy: 'introspect',
    });
    await cut.subscriber.close();
    expect(cut.subscriber.denyList.isFresh(5_000)).toBe(false);
    const server = invoicesApi(cut.options).listen(0, '127.0.0.1');
    await new Promise((ok) => server.once('listening', ok));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const call = (organisation: string) =>
      fetch(`${base}/organisations/${organisation}/invoices`, {
        headers: { authorization: `Bearer ${access_token}` },
        signal: AbortSignal.timeout(5_000),
      });
    try {
      expect((await call(acme)).status).toBe(200);
      const { csrf_token } = JSON.parse((await connections(flow.agent, '')).text) as { csrf_token: string };
      const path = `/${tenant.client.client_id}/grants/${grant_id}/organisations/${acme}`;
      expect((await connections(flow.agent, path, 'DELETE', csrf_token)).status).toBe(204);
      await eventually(async () => ((await call(acme)).status === 401 ? true : undefined), {
        what: 'introspection to drop the organisation',
      });
      expect((await call(globex)).status).toBe(200);
    } finally {
      server.close();
    }
  });

  it('the API serves only once its deny-list is bootstrapped, and reports it fresh from the heartbeats', () => {
    for (const at of [api, kafkaApi]) {
      expect(at.subscriber.denyList.ready).toBe(true);
      expect(at.subscriber.denyList.isFresh(5_000)).toBe(true);
    }
  });
});
