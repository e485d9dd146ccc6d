import { ACCOUNT_PAGE_PATH, LOGIN_CSRF_COOKIE, type LoginChallenge, STATEMENT } from '@grantline/flow';
import {
  cookieOptions,
  cookiesOf,
  escapeHtml,
  randomToken,
  renderPage,
  sendErrorPage,
} from '@grantline/oauth';
import type { Request, RequestHandler } from 'express';
import { resumeSignIn, transition } from '../domain/flow-state.ts';
import { type FlowDeps, readSession, redirectFor, startSession } from '../flow.ts';

/**
 * What a sign-in is for: one authorization flow (its signed challenge), or the user's own account
 * page (`/login?return=account`, which only ever leads to the fixed ACCOUNT_PAGE_PATH). The
 * account sign-in is not a state of the authorization flow (domain/flow-state.ts): no client, no
 * request, nothing to hand on but the session.
 */
type SignInFor = { kind: 'flow'; raw: string; challenge: LoginChallenge } | { kind: 'account' };

const hiddenFields = (target: SignInFor) =>
  target.kind === 'flow'
    ? `<input type="hidden" name="login_challenge" value="${escapeHtml(target.raw)}">`
    : '<input type="hidden" name="return" value="account">';

const loginForm = (target: SignInFor, csrf: string, error?: string) =>
  renderPage(
    'Sign in',
    `<h1>Sign in</h1>${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/login">
${hiddenFields(target)}
<input type="hidden" name="csrf_token" value="${escapeHtml(csrf)}">
<label for="username">Username<input type="text" id="username" name="username" autocomplete="username" required></label>
<label for="password">Password<input type="password" id="password" name="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>`,
  );

/** The CSRF binding of the login form: the browser's pre-session cookie and this flow's challenge (or the account). */
const csrfBinding = (cookie: string, target: SignInFor) =>
  `login:${cookie}:${target.kind === 'flow' ? target.challenge.jti : 'account'}`;

/** A verified login challenge, else `return=account` exactly, else nothing (an error page). */
const signInFor = async (
  deps: FlowDeps,
  fields: { challenge: unknown; return: unknown },
): Promise<SignInFor | undefined> => {
  if (typeof fields.challenge === 'string') {
    const challenge = await deps.keys.verify(STATEMENT.login, fields.challenge);
    return challenge && { kind: 'flow', raw: fields.challenge, challenge };
  }
  return fields.return === 'account' ? { kind: 'account' } : undefined;
};

/** The account page, on the consent service's origin as configured: never a URL from the request. */
const accountPage = (deps: FlowDeps) => new URL(ACCOUNT_PAGE_PATH, deps.consentUrl).href;

/**
 * GET /login: the sign-in form of one authorization flow (a signed `login_challenge`), or of the
 * account page (`return=account`). There is no `next`/`return_to` URL parameter, so it cannot
 * redirect off the issuer.
 */
export const loginPage =
  (deps: FlowDeps): RequestHandler =>
  async (req, res, next) => {
    try {
      const target = await signInFor(deps, {
        challenge: req.query.login_challenge,
        return: req.query.return,
      });
      // already signed in: the account page needs no second sign-in
      if (target?.kind === 'account' && (await readSession(deps, req)))
        return res.redirect(303, accountPage(deps));
      if (!target)
        return sendErrorPage(
          res,
          400,
          'invalid_request',
          'sign-in starts from an application: the link is invalid or expired',
        );
      let cookie = cookiesOf(req)[LOGIN_CSRF_COOKIE];
      if (!cookie || !/^[A-Za-z0-9_-]{22,64}$/.test(cookie)) {
        cookie = randomToken(16);
        res.cookie(LOGIN_CSRF_COOKIE, cookie, cookieOptions(deps.secureCookies));
      }
      res.type('html').send(loginForm(target, deps.keys.csrfToken(csrfBinding(cookie, target))));
    } catch (error) {
      next(error);
    }
  };

const field = (req: Request, name: string): string | undefined => {
  const v = (req.body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : undefined;
};

/**
 * POST /login: checks the CSRF token, the shared lock-out, then the password (scrypt, also for an
 * unknown user, so both cost the same; a hash weaker than the policy is replaced on success).
 * Success starts a session and moves the flow on (303 to consent), or goes to the account page; every password check's outcome is an event
 * for auditors (an attempt refused by the lock-out is a metric).
 */
export const loginSubmit =
  (deps: FlowDeps): RequestHandler =>
  async (req, res, next) => {
    try {
      const target = await signInFor(deps, {
        challenge: field(req, 'login_challenge'),
        return: field(req, 'return'),
      });
      if (!target)
        return sendErrorPage(res, 400, 'invalid_request', 'the sign-in link is invalid or expired');
      const cookie = cookiesOf(req)[LOGIN_CSRF_COOKIE];
      if (!cookie || !deps.keys.csrfValid(csrfBinding(cookie, target), field(req, 'csrf_token')))
        return sendErrorPage(
          res,
          403,
          'invalid_request',
          'the form has expired; go back to the application and try again',
        );

      const username = (field(req, 'username') ?? '').trim().slice(0, 200);
      const password = (field(req, 'password') ?? '').slice(0, 1_000);
      const address = req.ip ?? 'unknown';
      const retry = (status: number, message: string) =>
        res
          .status(status)
          .type('html')
          .send(loginForm(target, field(req, 'csrf_token')!, message));
      // names the user if there is one; nothing derived from a username that matches no user
      const failed = (reason: 'unknown_user' | 'wrong_password' | 'disabled', userId?: string) =>
        deps.store.append(`login-${userId ?? randomToken(16)}`, 'any', [
          {
            type: 'LoginFailed',
            data: { ...(userId && { userId }), reason, address: address.slice(0, 100) },
          },
        ]);

      // a refused attempt is counted in a metric by the limiter, not appended: no unbounded writes
      const locked = await deps.limiter.attempt(username, address);
      if (locked > 0) {
        res.set('Retry-After', String(locked));
        return retry(429, `Too many failed attempts. Try again in ${Math.ceil(locked / 60)} minutes.`);
      }
      const user = username ? await deps.people.userByName(username) : undefined;
      const ok = await deps.passwords.verify(user, password);
      if (!user || !ok || user.status !== 'active') {
        await failed(!user ? 'unknown_user' : !ok ? 'wrong_password' : 'disabled', user?.userId);
        return retry(401, 'Invalid username or password.');
      }
      await deps.limiter.recordSuccess(username, address);
      await deps.passwords.upgrade(user, password);
      const session = await startSession(deps, res, user.userId);
      await deps.store.append(`session-${session.sid}`, 'no_stream', [
        {
          type: 'UserAuthenticated',
          data: {
            userId: user.userId,
            sessionId: session.sid,
            method: 'password',
            address: address.slice(0, 100),
          },
        },
      ]);
      if (target.kind === 'account') return res.redirect(303, accountPage(deps));
      const signedIn = transition(resumeSignIn(target.challenge), { type: 'signed_in', session });
      if (!signedIn.ok) throw new Error(`a sign-in always moves the flow on: ${signedIn.refusal.reason}`);
      res.redirect(303, await redirectFor(deps, signedIn.state));
    } catch (error) {
      next(error);
    }
  };
