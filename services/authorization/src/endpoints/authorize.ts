import { sendErrorPage } from '@grantline/oauth';
import { activeTraceparent } from '@grantline/telemetry';
import type { Request, RequestHandler, Response } from 'express';
import {
  AuthorizationError,
  clientIdOf,
  resolveRedirect,
  UntrustedRequest,
  validateRequest,
} from '../domain/authorization-request.ts';
import { type ClientTarget, rejected, transition, validated } from '../domain/flow-state.ts';
import { type FlowDeps, readSession, redirectFor } from '../flow.ts';

type Params = Record<string, string | string[] | undefined>;

/**
 * GET and POST /oauth2/authorize (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1): `response_type=code` with
 * PKCE S256. The client and redirect URI are checked first; until they are valid an error is an HTML
 * page. Then the rest of the request, which starts the flow (domain/flow-state.ts): an
 * unauthenticated user is sent to sign in, a signed-in one to consent, each with a signed challenge
 * that carries the validated request.
 */
export const authorizeEndpoint =
  (deps: FlowDeps): RequestHandler =>
  async (req: Request, res: Response, next) => {
    const params = ((req.method === 'POST' ? req.body : req.query) ?? {}) as Params;
    let target: ClientTarget | undefined;
    try {
      const { client, redirectUri } = resolveRedirect(params, await deps.clients.get(clientIdOf(params)));
      // a state that is not valid (see validateRequest) is not echoed
      const state =
        typeof params.state === 'string' && /^[\x20-\x7e]{1,2048}$/.test(params.state)
          ? params.state
          : undefined;
      target = { redirectUri, state };
      // the flow's trace: later steps come back through the browser, which carries no trace context
      const traceparent = activeTraceparent();
      const request = {
        ...validateRequest(params, client, redirectUri),
        ...(traceparent && { traceparent }),
      };
      const checked = transition(validated(request), {
        type: 'session_checked',
        session: await readSession(deps, req),
      });
      if (!checked.ok) throw new Error(`a validated request is always checked: ${checked.refusal.reason}`);
      res.redirect(303, await redirectFor(deps, checked.state));
    } catch (error) {
      if (error instanceof UntrustedRequest) sendErrorPage(res, 400, error.error, error.description);
      else if (error instanceof AuthorizationError && target)
        res.redirect(303, await redirectFor(deps, rejected(target, error.error, error.description)));
      else next(error);
    }
  };
