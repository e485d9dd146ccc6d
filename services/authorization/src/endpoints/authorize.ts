import { STATEMENT, STATEMENT_TTL_SECONDS } from '@grantline/flow';
import { randomToken, sendErrorPage, withParameters } from '@grantline/oauth';
import type { Request, RequestHandler, Response } from 'express';
import {
  AuthorizationError,
  clientIdOf,
  resolveRedirect,
  UntrustedRequest,
  validateRequest,
} from '../domain/authorization-request.ts';
import { consentLocation, type FlowDeps, readSession } from '../flow.ts';

type Params = Record<string, string | string[] | undefined>;

/** An error response to the validated redirect URI: `error`, `state` and `iss` (RFC 9207). */
export const redirectError = (
  res: Response,
  issuer: string,
  target: { redirectUri: string; state?: string | undefined },
  error: string,
  description: string,
): void => {
  res.redirect(
    303,
    withParameters(target.redirectUri, {
      error,
      error_description: description,
      state: target.state,
      iss: issuer,
    }),
  );
};

/**
 * GET and POST /oauth2/authorize (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1): `response_type=code` with
 * PKCE S256. The client and redirect URI are checked first; until they are valid an error is an HTML
 * page. Then the rest of the request; an unauthenticated user is sent to sign in, a signed-in one to
 * consent, each with a signed challenge that carries the validated request.
 */
export const authorizeEndpoint =
  (deps: FlowDeps): RequestHandler =>
  async (req: Request, res: Response, next) => {
    const params = ((req.method === 'POST' ? req.body : req.query) ?? {}) as Params;
    let target: { redirectUri: string; state?: string | undefined } | undefined;
    try {
      const { client, redirectUri } = resolveRedirect(params, await deps.clients.get(clientIdOf(params)));
      // a state that is not valid (see validateRequest) is not echoed
      const state =
        typeof params.state === 'string' && /^[\x20-\x7e]{1,2048}$/.test(params.state)
          ? params.state
          : undefined;
      target = { redirectUri, state };
      const request = validateRequest(params, client, redirectUri);
      const session = await readSession(deps, req);
      if (!session || request.prompt.includes('login')) {
        if (request.prompt.includes('none'))
          throw new AuthorizationError('login_required', 'the user is not signed in');
        const challenge = await deps.keys.sign(
          STATEMENT.login,
          { req: request, jti: randomToken(16) },
          STATEMENT_TTL_SECONDS.login,
        );
        res.redirect(303, `/login?login_challenge=${encodeURIComponent(challenge)}`);
        return;
      }
      res.redirect(303, await consentLocation(deps, request, session));
    } catch (error) {
      if (error instanceof UntrustedRequest) sendErrorPage(res, 400, error.error, error.description);
      else if (error instanceof AuthorizationError && target)
        redirectError(res, deps.issuer, target, error.error, error.description);
      else next(error);
    }
  };
