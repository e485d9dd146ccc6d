import { STATEMENT } from '@grantline/flow';
import { randomToken, sendErrorPage } from '@grantline/oauth';
import { continueTrace, SPANS } from '@grantline/telemetry';
import type { RequestHandler, Response } from 'express';
import { type Refusal, resumeConsent, transition } from '../domain/flow-state.ts';
import { type FlowDeps, readSession, redirectFor } from '../flow.ts';

/** The page for a verdict the flow refuses (nothing goes back to the client: it may not be the client's browser). */
const refused = (res: Response, refusal: Refusal) =>
  sendErrorPage(
    res,
    400,
    'invalid_request',
    refusal.reason === 'verdict_replayed'
      ? 'the consent result has already been used; go back to the application and start again'
      : refusal.reason === 'out_of_order'
        ? 'the consent result is invalid or expired'
        : 'the consent result belongs to another sign-in',
  );

/**
 * GET /oauth2/authorize/complete: the consent service's verdict comes back here, and the flow
 * (domain/flow-state.ts) resumes from it. Allowed: an authorization code (a JWE only the token
 * service can open) goes to the client with `state` and `iss`. Denied: `error=access_denied`. A
 * verdict from another browser session, or used before, is refused.
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
      const received = transition(resumeConsent(verdict), {
        type: 'verdict_presented',
        verdict,
        session: await readSession(deps, req),
      });
      if (!received.ok) return refused(res, received.refusal);
      // claimed only once it is known to be this browser's: another browser cannot spend it
      const firstUse =
        typeof verdict.jti === 'string' && (await deps.singleUse('verdict', verdict.jti, verdict.exp));
      const settled = transition(received.state, {
        type: 'verdict_claimed',
        firstUse,
        codeId: randomToken(24),
      });
      if (!settled.ok) return refused(res, settled.refusal);
      // the code (sealed with the flow's trace context) is made in the flow's trace
      const location = await continueTrace(SPANS.flowStep('complete'), verdict.req.traceparent, () =>
        redirectFor(deps, settled.state),
      );
      res.redirect(303, location);
    } catch (error) {
      next(error);
    }
  };
