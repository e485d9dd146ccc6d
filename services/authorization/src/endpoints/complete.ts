import { STATEMENT } from '@grantline/flow';
import { randomToken, sendErrorPage, withParameters } from '@grantline/oauth';
import type { RequestHandler } from 'express';
import { type FlowDeps, readSession } from '../flow.ts';
import { redirectError } from './authorize.ts';

/**
 * GET /oauth2/authorize/complete: the consent service's verdict comes back here. Allowed: an
 * authorization code (a JWE only the token service can open) goes to the client with `state` and
 * `iss`. Denied: `error=access_denied`. A verdict from another browser session, or used before, is
 * refused.
 */
export const completeEndpoint =
  (deps: FlowDeps): RequestHandler =>
  async (req, res, next) => {
    try {
      const raw = typeof req.query.consent_verdict === 'string' ? req.query.consent_verdict : undefined;
      // what the consent service decided, signed with its verdict key; bound to the browser session
      const verdict = await deps.keys.verify(STATEMENT.verdict, raw);
      if (!verdict)
        return sendErrorPage(res, 400, 'invalid_request', 'the consent result is invalid or expired');
      const session = await readSession(deps, req);
      if (session?.sid !== verdict.sid)
        return sendErrorPage(res, 400, 'invalid_request', 'the consent result belongs to another sign-in');
      // one verdict, one outcome: a replay (a reload, a copied URL) gets no second code
      if (typeof verdict.jti !== 'string' || !(await deps.singleUse('verdict', verdict.jti, verdict.exp)))
        return sendErrorPage(
          res,
          400,
          'invalid_request',
          'the consent result has already been used; go back to the application and start again',
        );
      const { req: request } = verdict;
      if (verdict.error || !verdict.grant_id) {
        return redirectError(
          res,
          deps.issuer,
          request,
          verdict.error ?? 'access_denied',
          verdict.error_description ?? 'the user denied the request',
        );
      }
      const code = await deps.keys.encrypt(
        {
          jti: randomToken(24),
          cid: request.clientId,
          ruri: request.redirectUri,
          rs: request.redirectUriGiven,
          cc: request.codeChallenge,
          sub: verdict.sub,
          gid: verdict.grant_id,
          scp: verdict.scopes ?? [],
          orgs: verdict.organisations ?? [],
          res: request.resources,
          auth_time: verdict.auth_time,
          sid: verdict.sid,
        },
        deps.codeTtlSeconds,
      );
      res.redirect(
        303,
        withParameters(request.redirectUri, { code, state: request.state, iss: deps.issuer }),
      );
    } catch (error) {
      next(error);
    }
  };
