import type { FlowRequest, Session, Verdict } from '@grantline/flow';
import { describe, expect, it } from 'vitest';
import {
  type FlowInput,
  type FlowState,
  type FlowStep,
  rejected,
  resumeConsent,
  resumeSignIn,
  transition,
  validated,
} from '../src/domain/flow-state.ts';

const request = (extra: Partial<FlowRequest> = {}): FlowRequest => ({
  clientId: 'cl_1',
  redirectUri: 'https://app.example/cb',
  redirectUriGiven: true,
  scopes: ['accounting.read'],
  state: 'xyz',
  codeChallenge: 'c'.repeat(43),
  resources: ['https://api.example/'],
  prompt: [],
  ...extra,
});
const session: Session = { sid: 's1', sub: 'u1', auth_time: 1_700_000_000.123 };
const allowed = (extra: Partial<Verdict> = {}): Verdict => ({
  req: request(),
  ...session,
  jti: 'v1',
  grant_id: 'g1',
  scopes: ['accounting.read'],
  organisations: ['o1'],
  ...extra,
});

/** one state of each step, as far as the flow gets with the sample request and session */
const STATES: Record<FlowStep, FlowState> = {
  validated: { step: 'validated', request: request() },
  needs_sign_in: { step: 'needs_sign_in', request: request() },
  signed_in: { step: 'signed_in', request: request(), session },
  awaiting_consent: { step: 'awaiting_consent', request: request(), session },
  verdict_received: { step: 'verdict_received', request: request(), session, verdict: allowed() },
  code_issued: {
    step: 'code_issued',
    request: request(),
    code: {
      jti: 'c1',
      cid: 'cl_1',
      ruri: 'https://app.example/cb',
      rs: true,
      cc: 'c'.repeat(43),
      sub: 'u1',
      gid: 'g1',
      scp: [],
      orgs: [],
      res: [],
      auth_time: 1,
    },
  },
  rejected: {
    step: 'rejected',
    target: { redirectUri: 'https://app.example/cb' },
    error: 'x',
    description: 'y',
  },
};
/** one input of each type, each one the flow accepts in its own state */
const INPUTS: Record<FlowInput['type'], FlowInput> = {
  session_checked: { type: 'session_checked', session },
  signed_in: { type: 'signed_in', session },
  consent_requested: { type: 'consent_requested' },
  verdict_presented: { type: 'verdict_presented', verdict: allowed(), session },
  verdict_claimed: { type: 'verdict_claimed', firstUse: true, codeId: 'code-1' },
};
/** the only transitions there are (written out here, apart from the implementation's table) */
const ALLOWED = new Set([
  'validated + session_checked',
  'needs_sign_in + signed_in',
  'signed_in + consent_requested',
  'awaiting_consent + verdict_presented',
  'verdict_received + verdict_claimed',
]);

const next = (state: FlowState, input: FlowInput): FlowState => {
  const result = transition(state, input);
  if (!result.ok) throw new Error(`refused: ${JSON.stringify(result.refusal)}`);
  return result.state;
};

describe('the authorization flow as a state machine', () => {
  describe('every state x every input', () => {
    for (const [step, state] of Object.entries(STATES))
      for (const [type, input] of Object.entries(INPUTS)) {
        const pair = `${step} + ${type}`;
        it(`${pair}: ${ALLOWED.has(pair) ? 'moves on' : 'refused as out of order'}`, () => {
          const result = transition(state, input);
          if (ALLOWED.has(pair)) expect(result.ok).toBe(true);
          else expect(result).toEqual({ ok: false, refusal: { reason: 'out_of_order', step, input: type } });
        });
      }
  });

  it('runs from a validated request to a code: sign-in, consent, verdict, claim', () => {
    let state = next(validated(request()), { type: 'session_checked', session: undefined });
    expect(state).toEqual({ step: 'needs_sign_in', request: request() });
    state = next(state, { type: 'signed_in', session });
    expect(state).toEqual({ step: 'signed_in', request: request(), session });
    state = next(state, { type: 'consent_requested' });
    expect(state).toEqual({ step: 'awaiting_consent', request: request(), session });
    state = next(state, { type: 'verdict_presented', verdict: allowed(), session });
    expect(state.step).toBe('verdict_received');
    state = next(state, { type: 'verdict_claimed', firstUse: true, codeId: 'code-1' });
    expect(state).toEqual({
      step: 'code_issued',
      request: request(),
      code: {
        jti: 'code-1',
        cid: 'cl_1',
        ruri: 'https://app.example/cb',
        rs: true,
        cc: 'c'.repeat(43),
        sub: 'u1',
        gid: 'g1',
        scp: ['accounting.read'],
        orgs: ['o1'],
        res: ['https://api.example/'],
        auth_time: session.auth_time,
        sid: 's1',
      },
    });
  });

  describe('the session check at the authorization endpoint', () => {
    const checked = (prompt: FlowRequest['prompt'], current: Session | undefined) =>
      next(validated(request({ prompt })), { type: 'session_checked', session: current });

    it('a signed-in browser goes on to consent, with its session', () => {
      expect(checked([], session)).toEqual({ step: 'signed_in', request: request(), session });
      expect(checked(['consent'], session)).toMatchObject({ step: 'signed_in', session });
      // prompt=none shows no page here; whether consent needs one is the consent service's to say
      expect(checked(['none'], session)).toMatchObject({ step: 'signed_in', session });
    });

    it('no session, or prompt=login, needs a sign-in', () => {
      expect(checked([], undefined)).toEqual({ step: 'needs_sign_in', request: request() });
      expect(checked(['login'], session)).toMatchObject({ step: 'needs_sign_in' });
      expect(checked(['login', 'consent'], undefined)).toMatchObject({ step: 'needs_sign_in' });
    });

    it('prompt=none without a session is login_required, back to the client with its state', () => {
      expect(checked(['none'], undefined)).toEqual({
        step: 'rejected',
        target: { redirectUri: 'https://app.example/cb', state: 'xyz' },
        error: 'login_required',
        description: 'the user is not signed in',
      });
    });
  });

  describe('the verdict', () => {
    const awaiting = STATES.awaiting_consent;

    it('is refused without a consent challenge: before sign-in, or signed in but not handed to consent', () => {
      for (const state of [STATES.validated, STATES.needs_sign_in, STATES.signed_in])
        expect(transition(state, INPUTS.verdict_presented)).toMatchObject({
          ok: false,
          refusal: { reason: 'out_of_order', input: 'verdict_presented' },
        });
    });

    it('is refused in another browser session, or in a browser with none', () => {
      for (const current of [{ ...session, sid: 's2' }, undefined])
        expect(
          transition(awaiting, { type: 'verdict_presented', verdict: allowed(), session: current }),
        ).toEqual({ ok: false, refusal: { reason: 'verdict_for_another_session' } });
    });

    it("is refused when it answers another flow's challenge", () => {
      for (const verdict of [
        allowed({ sid: 's2' }),
        allowed({ sub: 'u2' }),
        allowed({ req: request({ state: 'other' }) }),
        allowed({ req: request({ codeChallenge: 'd'.repeat(43) }) }),
        allowed({ req: request({ clientId: 'cl_2' }) }),
      ])
        expect(transition(awaiting, { type: 'verdict_presented', verdict, session })).toEqual({
          ok: false,
          refusal: { reason: 'verdict_for_another_flow' },
        });
    });

    it('issues no code before the verdict is received and claimed', () => {
      for (const state of [STATES.signed_in, STATES.awaiting_consent])
        expect(transition(state, INPUTS.verdict_claimed)).toMatchObject({
          ok: false,
          refusal: { reason: 'out_of_order', input: 'verdict_claimed' },
        });
    });

    it('a replayed verdict (its single-use claim was taken) issues no second code, nor an error to the client', () => {
      const received = next(awaiting, { type: 'verdict_presented', verdict: allowed(), session });
      expect(transition(received, { type: 'verdict_claimed', firstUse: false, codeId: 'code-2' })).toEqual({
        ok: false,
        refusal: { reason: 'verdict_replayed' },
      });
      const denied = next(awaiting, {
        type: 'verdict_presented',
        verdict: allowed({ grant_id: undefined, error: 'access_denied' }),
        session,
      });
      expect(transition(denied, { type: 'verdict_claimed', firstUse: false, codeId: 'code-3' })).toEqual({
        ok: false,
        refusal: { reason: 'verdict_replayed' },
      });
    });

    it("a denial goes back to the client as the consent service's error, access_denied by default", () => {
      const settle = (verdict: Verdict) =>
        next(next(awaiting, { type: 'verdict_presented', verdict, session }), {
          type: 'verdict_claimed',
          firstUse: true,
          codeId: 'code-1',
        });
      const target = { redirectUri: 'https://app.example/cb', state: 'xyz' };
      expect(settle(allowed({ grant_id: undefined, error: undefined }))).toEqual({
        step: 'rejected',
        target,
        error: 'access_denied',
        description: 'the user denied the request',
      });
      expect(
        settle(allowed({ error: 'consent_required', error_description: 'the user must consent' })),
      ).toEqual({
        step: 'rejected',
        target,
        error: 'consent_required',
        description: 'the user must consent',
      });
      expect(settle(allowed({ grant_id: undefined, error: 'invalid_grant_id' }))).toMatchObject({
        step: 'rejected',
        error: 'invalid_grant_id',
      });
    });
  });

  it('the flow ends at a code or an error: nothing moves it on from there', () => {
    for (const state of [STATES.code_issued, STATES.rejected])
      for (const input of Object.values(INPUTS)) expect(transition(state, input).ok).toBe(false);
  });

  it('resumes from the statements that carry it through the browser', () => {
    expect(resumeSignIn({ req: request(), jti: 'l1' })).toEqual({
      step: 'needs_sign_in',
      request: request(),
    });
    // the verdict echoes the consent challenge's request and session
    expect(resumeConsent({ ...allowed(), exp: 1, iat: 0 } as Verdict)).toEqual({
      step: 'awaiting_consent',
      request: request(),
      session,
    });
    expect(rejected({ redirectUri: 'https://app.example/cb' }, 'invalid_scope', 'no')).toEqual({
      step: 'rejected',
      target: { redirectUri: 'https://app.example/cb', state: undefined },
      error: 'invalid_scope',
      description: 'no',
    });
  });
});
