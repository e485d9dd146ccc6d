import http from 'node:http';
import { Agent, redeem, refresh, runFlow } from '../e2e/flow.ts';
import type { RevocationStack } from './revocation-stack.ts';

/** One connection of the app: a grant for every organisation of the user, and its live access token. */
export interface Connection {
  grantId: string;
  accessToken: string;
  refreshToken: string;
  /** performance.now() when the access token was issued */
  issuedAt: number;
  organisations: string[];
}

/**
 * The user's side, one browser session: connects the app (a new grant per authorization code flow,
 * scripted over HTTP as bench:flow does) and disconnects through the account JSON API
 * (`/account/api/connections`, with the session's CSRF header and its own origin).
 */
export const userSession = (s: RevocationStack) => {
  const agent = new Agent();
  const organisations = s.tenant.organisations.map((o) => o.id);
  // on this shared machine a request through the development gateway now and then meets a 502: a
  // flow is tried again (up to 3 times) rather than failing the whole benchmark
  const connectOnce = async (): Promise<Connection> => {
    for (let attempt = 1; ; attempt++)
      try {
        return await connectFlow();
      } catch (error) {
        if (attempt === 3) throw error;
      }
  };
  const connectFlow = async (): Promise<Connection> => {
    const flow = await runFlow(s.stack, s.tenant, {
      agent,
      organisations,
      params: { grant_management_action: 'create' },
    });
    if (!flow.code) throw new Error(`flow ended at ${flow.step.status} ${flow.location?.href ?? ''}`);
    const tokens = await redeem(s.stack, s.tenant, flow.code, flow.verifier);
    if (tokens.status !== 200)
      throw new Error(`code exchange: ${tokens.status} ${JSON.stringify(tokens.body)}`);
    const body = tokens.body as { grant_id: string; access_token: string; refresh_token: string };
    return {
      grantId: body.grant_id,
      accessToken: body.access_token,
      refreshToken: body.refresh_token,
      issuedAt: performance.now(),
      organisations,
    };
  };
  let csrf: string | undefined;
  const csrfToken = async () =>
    (JSON.parse((await agent.request(`${s.issuer}/account/api/connections`)).text) as { csrf_token: string })
      .csrf_token;
  const api = `${s.issuer}/account/api/connections/${s.tenant.client.client_id}`;
  return {
    /** `count` new connections, `concurrency` flows at a time (one signed-in session: no sign-in per flow) */
    connect: async (count: number, concurrency = 4): Promise<Connection[]> => {
      const made = [await connectOnce()]; // the first signs the session in
      let started = 1;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (started < count) {
            started++;
            made.push(await connectOnce());
          }
        }),
      );
      // the session's CSRF token now, so that no disconnection waits for it
      csrf ??= await csrfToken();
      return made;
    },
    /** A new access token for the connection (refresh_token grant): a long run outlives the 10-minute tokens */
    renew: async (connection: Connection) => {
      const tokens = await refresh(s.stack, s.tenant, connection.refreshToken);
      if (tokens.status !== 200) throw new Error(`refresh: ${tokens.status} ${JSON.stringify(tokens.body)}`);
      connection.accessToken = tokens.body.access_token as string;
      connection.refreshToken = tokens.body.refresh_token as string;
      connection.issuedAt = performance.now();
    },
    /** Disconnects one organisation from a grant, or the grant (204 expected). */
    disconnect: async (grantId: string, organisation?: string) => {
      csrf ??= await csrfToken();
      const path = `${api}/grants/${grantId}${organisation ? `/organisations/${organisation}` : ''}`;
      return agent.request(path, { method: 'DELETE', headers: { origin: s.issuer, 'x-csrf-token': csrf } });
    },
  };
};

/**
 * A client of the invoices API over one keep-alive connection (node:http: no pooling surprises):
 * the status of `GET /organisations/:organisation/invoices` with this token.
 */
export const invoicesProbe = (resourceServerUrl: string) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return (token: string, organisation: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        new URL(`organisations/${organisation}/invoices`, resourceServerUrl),
        { agent, headers: { authorization: `Bearer ${token}` } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    });
};
