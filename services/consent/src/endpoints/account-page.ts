import { ACCOUNT_PAGE_PATH } from '@grantline/flow';
import { cookieOptions, cookiesOf, escapeHtml, renderPage, sendErrorPage } from '@grantline/oauth';
import type { Request, RequestHandler, Response } from 'express';
import {
  type AccountDeps,
  type AccountSession,
  type AppView,
  accountCsrfBinding,
  accountSession,
  connectedApps,
  type Disconnect,
  disconnect,
  type GrantView,
  readGrantOf,
} from '../account.ts';

/**
 * The confirmation after a disconnect, carried across the 303 in a short-lived cookie of this page
 * (not the query string, so nobody can link a user to a page claiming something was disconnected).
 */
const NOTICE_COOKIE = 'grantline_account_notice';
const noticeCookie = (deps: AccountDeps) => ({
  ...cookieOptions(deps.secureCookies, 60_000),
  path: '/account',
});

const when = (d: Date) =>
  `<time datetime="${d.toISOString()}">${d.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`;

const button = (csrf: string, fields: Record<string, string>, label: string) =>
  `<form method="post" action="connections"><input type="hidden" name="csrf_token" value="${escapeHtml(csrf)}">${Object.entries(
    fields,
  )
    .map(([k, v]) => `<input type="hidden" name="${k}" value="${escapeHtml(v)}">`)
    .join('')}<button type="submit">${escapeHtml(label)}</button></form>`;

const grantSection = (csrf: string, app: AppView, grant: GrantView, n: number) => {
  const ids = { client_id: app.clientId, grant_id: grant.grantId };
  const id = `grant-${escapeHtml(grant.grantId)}`;
  const orgs = grant.organisations
    .map(
      (o) =>
        `<li><span class="organisation">${escapeHtml(o.name)}</span> ${button(csrf, { disconnect: 'organisation', ...ids, organisation_id: o.id }, `Disconnect ${o.name}`)}</li>`,
    )
    .join('');
  const scopes = grant.scopes
    .map(
      (s) =>
        `<li class="scope"><strong>${escapeHtml(s.description)}</strong><small>${escapeHtml(s.scope)}</small></li>`,
    )
    .join('');
  return `<section class="grant" aria-labelledby="${id}"><h3 id="${id}">Connection ${n}</h3>
<p>Connected ${when(grant.connectedAt)}; last used ${grant.lastUsedAt ? when(grant.lastUsedAt) : 'never'}.</p>
<h4>Organisations</h4><ul>${orgs}</ul>
<h4>It may</h4><ul>${scopes}</ul>
${button(csrf, { disconnect: 'grant', ...ids }, 'Disconnect this connection')}</section>`;
};

const appSection = (csrf: string, app: AppView, i: number) =>
  `<section class="app" aria-labelledby="app-${i}"><h2 id="app-${i}">${escapeHtml(app.name)}</h2>
${app.grants.map((g, n) => grantSection(csrf, app, g, n + 1)).join('')}
${button(csrf, { disconnect: 'app', client_id: app.clientId }, `Disconnect ${app.name}`)}</section>`;

const page = (deps: AccountDeps, session: AccountSession, apps: AppView[], notice?: string) => {
  const csrf = deps.keys.csrfToken(accountCsrfBinding(session));
  return renderPage(
    'Connected apps',
    `<h1>Connected apps</h1>${notice ? `<p class="notice" role="status">${escapeHtml(notice)}</p>` : ''}
${apps.length === 0 ? '<p>No app is connected to your account.</p>' : apps.map((a, i) => appSection(csrf, a, i)).join('')}`,
  );
};

/** GET /account/connections: the signed-in user's apps; without a session, the sign-in page first. */
export const accountPage =
  (deps: AccountDeps): RequestHandler =>
  async (req, res, next) => {
    try {
      const session = await accountSession(deps, req);
      if (!session) return res.redirect(303, deps.signInUrl);
      const raw = cookiesOf(req)[NOTICE_COOKIE];
      const notice = raw ? Buffer.from(raw, 'base64url').toString('utf8').slice(0, 500) : undefined;
      if (raw) res.clearCookie(NOTICE_COOKIE, noticeCookie(deps));
      res.type('html').send(page(deps, session, await connectedApps(deps, session.sub), notice));
    } catch (error) {
      next(error);
    }
  };

const field = (req: Request, name: string): string => {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
};

const requested = (req: Request): Disconnect | undefined => {
  const clientId = field(req, 'client_id');
  const grantId = field(req, 'grant_id');
  switch (field(req, 'disconnect')) {
    case 'organisation':
      return { what: 'organisation', clientId, grantId, organisationId: field(req, 'organisation_id') };
    case 'grant':
      return { what: 'grant', clientId, grantId };
    case 'app':
      return { what: 'app', clientId };
    default:
      return undefined;
  }
};

const notFound = (res: Response) =>
  sendErrorPage(res, 404, 'not_found', 'there is no such connection in your account');

/**
 * POST /account/connections: one disconnect (an organisation of a grant, a grant, or an app),
 * CSRF-checked with the session's token, then a 303 back to the page with a confirmation.
 */
export const accountSubmit =
  (deps: AccountDeps): RequestHandler =>
  async (req, res, next) => {
    try {
      const what = requested(req);
      const csrfValid = (s: AccountSession) =>
        deps.keys.csrfValid(accountCsrfBinding(s), field(req, 'csrf_token') || undefined);
      // the grant is read beside the session's reads, once the cookie and the CSRF token hold
      const session = await accountSession(deps, req, (signed) =>
        csrfValid(signed) ? readGrantOf(deps, what) : undefined,
      );
      if (!session) return res.redirect(303, deps.signInUrl);
      if (!csrfValid(session))
        return sendErrorPage(
          res,
          403,
          'invalid_request',
          'the form has expired; reload the page and try again',
        );
      const done = what && (await disconnect(deps, session.sub, what, session.alongside));
      if (!done) return notFound(res);
      res.cookie(NOTICE_COOKIE, Buffer.from(done.notice).toString('base64url'), noticeCookie(deps));
      res.redirect(303, ACCOUNT_PAGE_PATH);
    } catch (error) {
      next(error);
    }
  };
