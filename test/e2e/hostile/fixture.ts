import { eventually } from '@grantline/testing';
import { expect, inject } from 'vitest';
import { Agent, createTenant, redeem, runFlow, type Tenant } from '../flow.ts';
import { basic, type Stack, startStack } from '../stack.ts';
import { NATIVE_REDIRECT } from './generators.ts';

/**
 * The running stack the hostile-parameter properties aim at: a tenant with a confidential client,
 * a public native client, a signed-in browser session, a grant, and live and spent codes and
 * refresh tokens to mangle.
 */

export interface Client {
  id: string;
  redirect: string;
  /** the redirect URIs the server may accept for this client (reference, not the server's code) */
  accepts: (uri: string) => boolean;
  /** the Location values that are this client's redirect URI with parameters */
  isRedirect: (location: string) => boolean;
}

export interface Fixture {
  stack: Stack;
  tenant: Tenant;
  confidential: Client;
  native: Client;
  sessionCookie: string;
  grantId: string;
  /** a live, unredeemed code and its verifier */
  fresh: { code: string; verifier: string };
  /** a live refresh token */
  liveRefresh: string;
  /** a code already redeemed and replayed (its refresh token family is revoked) and that family's token */
  spent: { code: string; verifier: string; refresh: string };
  stop: () => Promise<void>;
}

/** Starts a stack and builds the fixture on it; call from `beforeAll` (120 s) and `stop` it in `afterAll`. */
export const startFixture = async (): Promise<Fixture> => {
  const stack = await startStack(inject('infra'), { CLIENT_AUTH_FAILURES_PER_MINUTE: '1000000' });
  try {
    const tenant = await createTenant(stack);
    const registered = tenant.client.redirect_uri;
    const confidential: Client = {
      id: tenant.client.client_id,
      redirect: registered,
      accepts: (uri) => uri === registered,
      isRedirect: (location) => location.startsWith(`${registered}?`) && !location.includes('#'),
    };
    const app = await stack.register({
      client_name: 'Native app',
      redirect_uris: [NATIVE_REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: tenant.scopes.join(' '),
    });
    await eventually(
      async () =>
        (await stack.db.pool.query('SELECT 1 FROM authz.clients WHERE client_id = $1', [app.client_id]))
          .rowCount
          ? true
          : undefined,
      { what: 'the authorization service to know the native client' },
    );
    // RFC 8252 §7.3: a loopback redirect URI may differ in its port only
    const loopback = /^http:\/\/127\.0\.0\.1(?::(\d{1,5}))?\/cb$/;
    const native: Client = {
      id: app.client_id,
      redirect: NATIVE_REDIRECT,
      accepts: (uri) => {
        const m = loopback.exec(uri);
        return !!m && (m[1] === undefined || Number(m[1]) <= 65_535);
      },
      isRedirect: (location) => /^http:\/\/127\.0\.0\.1(?::\d{1,5})?\/cb\?[^#]*$/.test(location),
    };

    // each flow its own grant (and own browser), so revoking one leaves the others alone
    const create = { grant_management_action: 'create' };
    const first = await runFlow(stack, tenant, { params: create });
    const sessionCookie = [...first.agent.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const fresh = { code: first.code!, verifier: first.verifier };

    const second = await runFlow(stack, tenant, { params: create, agent: new Agent() });
    const tokens = await redeem(stack, tenant, second.code!, second.verifier);
    expect(tokens.status).toBe(200);
    const liveRefresh = tokens.body.refresh_token as string;
    const grantId = tokens.body.grant_id as string;

    const third = await runFlow(stack, tenant, { params: create, agent: new Agent() });
    const once = await redeem(stack, tenant, third.code!, third.verifier);
    expect(once.status).toBe(200);
    expect((await redeem(stack, tenant, third.code!, third.verifier)).body.error).toBe('invalid_grant');
    const spent = { code: third.code!, verifier: third.verifier, refresh: once.body.refresh_token as string };

    return {
      stack,
      tenant,
      confidential,
      native,
      sessionCookie,
      grantId,
      fresh,
      liveRefresh,
      spent,
      stop: () => stack.stop(),
    };
  } catch (error) {
    await stack.stop();
    throw error;
  }
};

/** valid Basic credentials of the confidential client */
export const validAuth = (f: Fixture) => basic(f.tenant.client.client_id, f.tenant.client.client_secret!);
