import { SESSION_COOKIE } from '@grantline/flow';
import { cookieOptions, escapeHtml, renderPage, sendErrorPage } from '@grantline/oauth';
import type { RequestHandler } from 'express';
import { type FlowDeps, readSession } from '../flow.ts';

const binding = (sid: string) => `logout:${sid}`;

/** GET /logout: a "Sign out" form (a GET never signs anyone out, so a link or image cannot). */
export const logoutPage =
  (deps: FlowDeps): RequestHandler =>
  async (req, res, next) => {
    try {
      const session = await readSession(deps, req);
      if (!session)
        return void res.type('html').send(renderPage('Signed out', '<h1>You are signed out</h1>'));
      res
        .type('html')
        .send(
          renderPage(
            'Sign out',
            `<h1>Sign out</h1><form method="post" action="/logout"><input type="hidden" name="csrf_token" value="${escapeHtml(deps.keys.csrfToken(binding(session.sid)))}"><button type="submit">Sign out</button></form>`,
          ),
        );
    } catch (error) {
      next(error);
    }
  };

/** POST /logout: ends the session (CSRF-checked) and records it. */
export const logoutSubmit =
  (deps: FlowDeps): RequestHandler =>
  async (req, res, next) => {
    try {
      const session = await readSession(deps, req);
      const token = (req.body as Record<string, unknown> | undefined)?.csrf_token;
      if (
        session &&
        !deps.keys.csrfValid(binding(session.sid), typeof token === 'string' ? token : undefined)
      )
        return sendErrorPage(res, 403, 'invalid_request', 'the form has expired');
      res.clearCookie(SESSION_COOKIE, cookieOptions(deps.secureCookies));
      // The cookie may have been copied: the session itself ends, on every instance. The event is the
      // record that lasts, so it comes first; the Redis copy only makes every instance know at once,
      // and without it they ask the durable record.
      if (session) {
        await deps.store.append(`session-${session.sid}`, 'any', [
          { type: 'UserLoggedOut', data: { userId: session.sub, sessionId: session.sid } },
        ]);
        await deps.sessions
          .revoke(session.sid, (session.exp ?? 0) - deps.clock.now() / 1000)
          .catch((error: unknown) =>
            req.log?.warn({ err: error }, 'sign-out not cached; the event records it'),
          );
      }
      res.type('html').send(renderPage('Signed out', '<h1>You are signed out</h1>'));
    } catch (error) {
      next(error);
    }
  };
