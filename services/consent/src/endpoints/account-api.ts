import { noStore } from '@grantline/oauth';
import { problem } from '@grantline/service-kit';
import type { Request, RequestHandler, Response } from 'express';
import {
  type AccountDeps,
  type AccountSession,
  accountCsrfBinding,
  accountSession,
  connectedApps,
  type Disconnect,
  disconnect,
  readGrantOf,
} from '../account.ts';

/** The header a state-changing request carries the session's CSRF token in (from the list's `csrf_token`). */
export const ACCOUNT_CSRF_HEADER = 'x-csrf-token';

type Handler = (req: Request, res: Response, session: AccountSession) => Promise<unknown>;

/** The session's user, else 401: the API is for the signed-in browser, on the same cookie as the page. */
const signedIn =
  (deps: AccountDeps, fn: Handler): RequestHandler =>
  async (req, res, next) => {
    try {
      const session = await accountSession(deps, req);
      if (!session) return void problem(res, 401, 'Not signed in', 'sign in at /login?return=account');
      await fn(req, res, session);
    } catch (error) {
      next(error);
    }
  };

/**
 * CSRF for state-changing methods: the browser's `Origin` must be the public origin (a cross-site
 * page cannot forge it) and the session's CSRF token must come in the `X-CSRF-Token` header (a
 * custom header, which no HTML form can send and no cross-origin script may without a CORS preflight,
 * which this API never answers). SameSite cookies alone are not relied on.
 */
const csrfChecked = (deps: AccountDeps, req: Request, session: AccountSession) =>
  req.get('origin') === deps.origin &&
  deps.keys.csrfValid(accountCsrfBinding(session), req.get(ACCOUNT_CSRF_HEADER));

/**
 * `/account/api/connections`, the account page as JSON for the user's own session: `GET` lists the
 * connected apps; `DELETE` of `/:client_id` (the app), `/:client_id/grants/:grant_id` (a grant) or
 * `/:client_id/grants/:grant_id/organisations/:organisation_id` (one organisation of a grant)
 * disconnects it and answers 204, or 404 for anything that is not the user's.
 */
export const accountApi = (deps: AccountDeps) => {
  const remove = (toDisconnect: (req: Request) => Disconnect): RequestHandler[] => [
    noStore,
    async (req, res, next) => {
      try {
        const d = toDisconnect(req);
        // the grant is read beside the session's reads, once the cookie and the CSRF token hold
        const session = await accountSession(deps, req, (signed) =>
          csrfChecked(deps, req, signed) ? readGrantOf(deps, d) : undefined,
        );
        if (!session) return void problem(res, 401, 'Not signed in', 'sign in at /login?return=account');
        if (!csrfChecked(deps, req, session))
          return void problem(
            res,
            403,
            'CSRF check failed',
            `send Origin ${deps.origin} and the X-CSRF-Token header`,
          );
        const done = await disconnect(deps, session.sub, d, session.alongside);
        if (!done) return void problem(res, 404, 'Not found', 'there is no such connection in your account');
        res.status(204).end();
      } catch (error) {
        next(error);
      }
    },
  ];
  const p = (req: Request, name: string) => String(req.params[name]);
  return {
    list: [
      noStore,
      signedIn(deps, async (_req, res, session) => {
        const apps = await connectedApps(deps, session.sub);
        res.json({
          csrf_token: deps.keys.csrfToken(accountCsrfBinding(session)),
          apps: apps.map((a) => ({
            client_id: a.clientId,
            client_name: a.name,
            grants: a.grants.map((g) => ({
              grant_id: g.grantId,
              organisations: g.organisations,
              scopes: g.scopes,
              connected_at: g.connectedAt.toISOString(),
              last_used_at: g.lastUsedAt?.toISOString() ?? null,
            })),
          })),
        });
      }),
    ] as RequestHandler[],
    removeApp: remove((req) => ({ what: 'app', clientId: p(req, 'client_id') })) as RequestHandler[],
    removeGrant: remove((req) => ({
      what: 'grant',
      clientId: p(req, 'client_id'),
      grantId: p(req, 'grant_id'),
    })) as RequestHandler[],
    removeOrganisation: remove((req) => ({
      what: 'organisation',
      clientId: p(req, 'client_id'),
      grantId: p(req, 'grant_id'),
      organisationId: p(req, 'organisation_id'),
    })) as RequestHandler[],
  };
};
