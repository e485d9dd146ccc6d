import { randomBytes } from 'node:crypto';
import type { Clock } from '@grantline/clock';
import type { Infrastructure } from '@grantline/testing';
import { eventually } from '@grantline/testing';
import { expect } from 'vitest';
import { createTenant, redeem, runFlow, type Tenant } from './flow.ts';
import { basic, type Stack, startStack } from './stack.ts';

export const API = 'https://invoices.example/';
export const OTHER_API = 'https://payroll.example/';

export type Client = { client_id: string; client_secret: string };

/** The stack and clients the introspection tests share. */
export interface IntrospectionStack {
  stack: Stack;
  /** a user in three organisations and an app whose tokens are for API */
  tenant: Tenant;
  /** API's resource server */
  rs: Client;
  /** another API's resource server */
  otherRs: Client;
  /** an app that signs users in and may ask tokens for the API: not its resource server */
  otherApp: Client;
}

/** Starts the stack on `clock` and registers the clients; resolves once introspection knows them all. */
export const startIntrospectionStack = async (
  infra: Infrastructure,
  clock: Clock,
): Promise<IntrospectionStack> => {
  const stack = await startStack(infra, {}, { clock });
  const tenant = await createTenant(stack, { resources: [API] });
  const resourceServer = (resources: string[]) =>
    stack.registerResourceServer(resources, `Invoices API ${randomBytes(3).toString('hex')}`);
  const rs = await resourceServer([API]);
  const otherRs = await resourceServer([OTHER_API]);
  const otherApp = (await stack.register({
    client_name: 'Another app',
    redirect_uris: ['https://other.example/cb'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    resources: [API],
  })) as Client;
  await eventually(
    async () => {
      const { rowCount } = await stack.db.pool.query(
        'SELECT 1 FROM introspection.clients WHERE client_id = ANY($1)',
        [[tenant.client.client_id, rs.client_id, otherRs.client_id, otherApp.client_id]],
      );
      return rowCount === 4 ? true : undefined;
    },
    { what: 'the introspection service to know the clients' },
  );
  return { stack, tenant, rs, otherRs, otherApp };
};

/** POST /oauth2/introspect as `caller` (Basic with a secret, else a public client's client_id). */
export const introspector =
  (current: () => Stack) =>
  async (
    caller: { client_id: string; client_secret?: string } | undefined,
    form: Record<string, string>,
    headers: Record<string, string> = {},
  ) => {
    const res = await fetch(`${current().issuer}/oauth2/introspect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(caller?.client_secret && { authorization: basic(caller.client_id, caller.client_secret) }),
        ...headers,
      },
      body: new URLSearchParams({
        ...(caller && !caller.client_secret && { client_id: caller.client_id }),
        ...form,
      }),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      text,
      body: text.startsWith('{') ? JSON.parse(text) : text,
    };
  };

/** A new grant of the tenant's app in `organisations` (default: the first two), and its tokens. */
export const connector =
  (current: () => Stack, tenantOf: () => Tenant) =>
  async (
    organisations = tenantOf()
      .organisations.slice(0, 2)
      .map((o) => o.id),
  ) => {
    const flow = await runFlow(current(), tenantOf(), {
      organisations,
      params: { grant_management_action: 'create' },
    });
    const tokens = await redeem(current(), tenantOf(), flow.code!, flow.verifier);
    expect(tokens.status).toBe(200);
    return tokens.body as { access_token: string; refresh_token: string; grant_id: string };
  };
