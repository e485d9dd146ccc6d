import type { Clock } from '@grantline/clock';
import type { EventStore } from '@grantline/event-store';
import {
  type FlowKeys,
  SESSION_COOKIE,
  type Session as SignedSession,
  STATEMENT,
  STATEMENT_TTL_SECONDS,
} from '@grantline/flow';
import {
  cookieOptions,
  cookiesOf,
  randomToken,
  type SessionRevocations,
  type SingleUse,
  withParameters,
} from '@grantline/oauth';
import type { ClientDirectory, People } from '@grantline/registry-directory';
import type { Request, Response } from 'express';
import type { LoginLimiter } from './adapters/login-limiter.ts';
import type { Passwords } from './adapters/passwords.ts';
import { type FlowState, transition } from './domain/flow-state.ts';

// the hand-off contract (statements, their `typ`s, lifetimes and keys by purpose; cookie names) is packages/flow

export interface Session extends SignedSession {
  /** when the cookie expires (s) */
  exp?: number;
}

export interface FlowDeps {
  issuer: string;
  consentUrl: string;
  /** signs sessions, challenges and codes; verifies verdicts; seals codes to the token service; CSRF */
  keys: FlowKeys;
  passwords: Passwords;
  clients: ClientDirectory;
  people: People;
  store: EventStore;
  limiter: LoginLimiter;
  sessions: SessionRevocations;
  /** claims a statement's `jti` once (a consent verdict) */
  singleUse: SingleUse;
  sessionTtlSeconds: number;
  codeTtlSeconds: number;
  secureCookies: boolean;
  /** sign-in times and what is left of a session (statements' iat/exp are `keys`' own clock, the same one) */
  clock: Clock;
}

/** The signed-in user of this browser, if the session is valid and the user may still sign in. */
export const readSession = async (deps: FlowDeps, req: Request): Promise<Session | undefined> => {
  const session = await deps.keys.verify(STATEMENT.session, cookiesOf(req)[SESSION_COOKIE]);
  if (!session) return undefined;
  const [revoked, user] = await Promise.all([
    deps.sessions.isRevoked(session.sid),
    deps.people.user(session.sub),
  ]);
  if (revoked || user?.status !== 'active') return undefined;
  // a password change ends every session that started before it
  if (user.credentialsChangedAt && user.credentialsChangedAt.getTime() > session.auth_time * 1000)
    return undefined;
  return { sid: session.sid, sub: session.sub, auth_time: session.auth_time, exp: session.exp };
};

export const startSession = async (deps: FlowDeps, res: Response, userId: string): Promise<Session> => {
  // in seconds with millisecond precision (a NumericDate may be fractional, RFC 7519 §2): a password
  // change in the same second as a sign-in is still told apart as before or after it
  const session = { sid: randomToken(16), sub: userId, auth_time: deps.clock.now() / 1000 };
  const cookie = await deps.keys.sign(STATEMENT.session, session, deps.sessionTtlSeconds);
  res.cookie(SESSION_COOKIE, cookie, cookieOptions(deps.secureCookies, deps.sessionTtlSeconds * 1000));
  return session;
};

/**
 * Where the browser goes from a state of the flow (domain/flow-state.ts), and what entering that
 * state takes: a signed challenge to the login form or the consent service, a sealed code or an
 * error to the client (with `state` and `iss`, RFC 9207). A signed-in flow is handed to consent.
 */
export const redirectFor = async (deps: FlowDeps, state: FlowState): Promise<string> => {
  switch (state.step) {
    case 'validated':
    case 'verdict_received':
      // these wait for an input (the session, the verdict's claim) within the same request
      throw new Error(`the flow does not leave the server from ${state.step}`);
    case 'needs_sign_in': {
      const challenge = await deps.keys.sign(
        STATEMENT.login,
        { req: state.request, jti: randomToken(16) },
        STATEMENT_TTL_SECONDS.login,
      );
      return `/login?login_challenge=${encodeURIComponent(challenge)}`;
    }
    case 'signed_in': {
      const handedOff = transition(state, { type: 'consent_requested' });
      if (!handedOff.ok) throw new Error(`a signed-in flow goes to consent: ${handedOff.refusal.reason}`);
      return redirectFor(deps, handedOff.state);
    }
    case 'awaiting_consent': {
      const { request, session } = state;
      const challenge = await deps.keys.sign(
        STATEMENT.consent,
        {
          req: request,
          sub: session.sub,
          sid: session.sid,
          auth_time: session.auth_time,
          jti: randomToken(16),
        },
        STATEMENT_TTL_SECONDS.consent,
      );
      const url = new URL(deps.consentUrl);
      url.searchParams.set('consent_challenge', challenge);
      return url.href;
    }
    case 'code_issued': {
      // a JWE only the token service can open
      const code = await deps.keys.encrypt(state.code, deps.codeTtlSeconds);
      return withParameters(state.request.redirectUri, {
        code,
        state: state.request.state,
        iss: deps.issuer,
      });
    }
    case 'rejected':
      return withParameters(state.target.redirectUri, {
        error: state.error,
        error_description: state.description,
        state: state.target.state,
        iss: deps.issuer,
      });
    default:
      return state satisfies never;
  }
};
