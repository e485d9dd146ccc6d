import type { AuthorizationCode, FlowRequest, LoginChallenge, Session, Verdict } from '@grantline/flow';

/**
 * The browser flow of one authorization request as an explicit state machine:
 *
 *   validated --session_checked--> needs_sign_in --signed_in--> signed_in
 *           \--session_checked--> signed_in --consent_requested--> awaiting_consent
 *           \--session_checked--> rejected (prompt=none and nobody signed in: login_required)
 *   awaiting_consent --verdict_presented--> verdict_received --verdict_claimed--> code_issued | rejected
 *
 * `code_issued` and `rejected` end the flow (the browser goes back to the client with a code or an
 * error). Pure: sessions, verdicts, whether a verdict was used before and code ids come in with the
 * input. The state does not live on the server between requests: it travels through the browser in
 * the hand-off statements (packages/flow), and each endpoint resumes it from the one it verified.
 */
export type FlowState =
  | { step: 'validated'; request: FlowRequest }
  | { step: 'needs_sign_in'; request: FlowRequest }
  | { step: 'signed_in'; request: FlowRequest; session: Session }
  | { step: 'awaiting_consent'; request: FlowRequest; session: Session }
  | { step: 'verdict_received'; request: FlowRequest; session: Session; verdict: Verdict }
  | { step: 'code_issued'; request: FlowRequest; code: AuthorizationCode }
  | { step: 'rejected'; target: ClientTarget; error: string; description: string };

export type FlowStep = FlowState['step'];

/** Where a code or an error goes: the validated redirect URI, with the client's `state`. */
export interface ClientTarget {
  redirectUri: string;
  state?: string | undefined;
}

export type FlowInput =
  /** the browser's session, if it has a valid one, read at the authorization endpoint */
  | { type: 'session_checked'; session: Session | undefined }
  /** the user signed in on the login form */
  | { type: 'signed_in'; session: Session }
  /** the browser is handed to the consent service */
  | { type: 'consent_requested' }
  /** a consent verdict came back, in a browser with this session (if any) */
  | { type: 'verdict_presented'; verdict: Verdict; session: Session | undefined }
  /** the verdict's single-use claim: whether this is its first use; the id a code would get */
  | { type: 'verdict_claimed'; firstUse: boolean; codeId: string };

/** An input the flow refuses in its state: expected (a replay, a stale tab), answered, never thrown. */
export type Refusal =
  | { reason: 'out_of_order'; step: FlowStep; input: FlowInput['type'] }
  | { reason: 'verdict_for_another_flow' }
  | { reason: 'verdict_for_another_session' }
  | { reason: 'verdict_replayed' };

export type Transition = { ok: true; state: FlowState } | { ok: false; refusal: Refusal };

const to = (state: FlowState): Transition => ({ ok: true, state });
const refuse = (refusal: Refusal): Transition => ({ ok: false, refusal });

/** The end of a flow that goes back to the client with an error (RFC 6749 §4.1.2.1). */
export const rejected = (target: ClientTarget, error: string, description: string): FlowState => ({
  step: 'rejected',
  target: { redirectUri: target.redirectUri, state: target.state },
  error,
  description,
});

/** The start: a request that passed validation. */
export const validated = (request: FlowRequest): FlowState => ({ step: 'validated', request });

/** Resumed at the login form from its verified challenge. */
export const resumeSignIn = (challenge: LoginChallenge): FlowState => ({
  step: 'needs_sign_in',
  request: challenge.req,
});

/** Resumed at the return from consent: the verdict echoes the request and session of the consent challenge. */
export const resumeConsent = (verdict: Verdict): FlowState => ({
  step: 'awaiting_consent',
  request: verdict.req,
  session: { sid: verdict.sid, sub: verdict.sub, auth_time: verdict.auth_time },
});

const sameRequest = (a: FlowRequest, b: FlowRequest) =>
  a.clientId === b.clientId &&
  a.redirectUri === b.redirectUri &&
  a.codeChallenge === b.codeChallenge &&
  a.state === b.state;

const codeFor = (request: FlowRequest, verdict: Verdict, grantId: string, codeId: string) => ({
  jti: codeId,
  cid: request.clientId,
  ruri: request.redirectUri,
  rs: request.redirectUriGiven,
  cc: request.codeChallenge,
  sub: verdict.sub,
  gid: grantId,
  scp: verdict.scopes ?? [],
  orgs: verdict.organisations ?? [],
  res: request.resources,
  auth_time: verdict.auth_time,
  sid: verdict.sid,
  ...(request.traceparent && { tp: request.traceparent }),
});

type StateAt<S extends FlowStep> = Extract<FlowState, { step: S }>;
type InputOf<T extends FlowInput['type']> = Extract<FlowInput, { type: T }>;
type Guarded<S extends FlowStep> = {
  [T in FlowInput['type']]?: (state: StateAt<S>, input: InputOf<T>) => Transition;
};

/** Every allowed transition, by state and input; any other pair is refused as out of order. */
const TRANSITIONS: { [S in FlowStep]: Guarded<S> } = {
  validated: {
    session_checked: ({ request }, { session }) => {
      if (session && !request.prompt.includes('login')) return to({ step: 'signed_in', request, session });
      // prompt=none never shows a page (OIDC Core §3.1.2.1); the error is login_required (§3.1.2.6)
      if (request.prompt.includes('none'))
        return to(rejected(request, 'login_required', 'the user is not signed in'));
      return to({ step: 'needs_sign_in', request });
    },
  },
  needs_sign_in: {
    signed_in: ({ request }, { session }) => to({ step: 'signed_in', request, session }),
  },
  signed_in: {
    consent_requested: ({ request, session }) => to({ step: 'awaiting_consent', request, session }),
  },
  awaiting_consent: {
    verdict_presented: ({ request, session }, { verdict, session: browser }) => {
      if (verdict.sid !== session.sid || verdict.sub !== session.sub || !sameRequest(verdict.req, request))
        return refuse({ reason: 'verdict_for_another_flow' });
      // bound to the browser session that signed in: a verdict URL is worth nothing elsewhere
      if (browser?.sid !== verdict.sid) return refuse({ reason: 'verdict_for_another_session' });
      return to({ step: 'verdict_received', request, session, verdict });
    },
  },
  verdict_received: {
    verdict_claimed: ({ request, verdict }, { firstUse, codeId }) => {
      // one verdict, one outcome: a reload or a copied URL gets no second code
      if (!firstUse) return refuse({ reason: 'verdict_replayed' });
      if (verdict.error || !verdict.grant_id)
        return to(
          rejected(
            request,
            verdict.error ?? 'access_denied',
            verdict.error_description ?? 'the user denied the request',
          ),
        );
      return to({ step: 'code_issued', request, code: codeFor(request, verdict, verdict.grant_id, codeId) });
    },
  },
  code_issued: {},
  rejected: {},
};

/** The next state of the flow on `input`, or why the flow refuses it in this state. */
export const transition = (state: FlowState, input: FlowInput): Transition => {
  const guarded = TRANSITIONS[state.step][input.type] as
    | ((state: FlowState, input: FlowInput) => Transition)
    | undefined;
  return guarded
    ? guarded(state, input)
    : refuse({ reason: 'out_of_order', step: state.step, input: input.type });
};
