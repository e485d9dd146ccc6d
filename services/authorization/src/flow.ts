import type { Clock } from '@grantline/clock';
import type { ClientDirectory, People } from '@grantline/directory';
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
} from '@grantline/oauth';
import type { Request, Response } from 'express';
import type { LoginLimiter } from './adapters/login-limiter.ts';
import type { Passwords } from './adapters/passwords.ts';
import type { AuthorizationRequest } from './domain/authorization-request.ts';

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

/** Where the browser goes once the user is known: the consent service, with a signed challenge. */
export const consentLocation = async (
  deps: FlowDeps,
  request: AuthorizationRequest,
  session: Session,
): Promise<string> => {
  const challenge = await deps.keys.sign(
    STATEMENT.consent,
    { req: request, sub: session.sub, sid: session.sid, auth_time: session.auth_time, jti: randomToken(16) },
    STATEMENT_TTL_SECONDS.consent,
  );
  const url = new URL(deps.consentUrl);
  url.searchParams.set('consent_challenge', challenge);
  return url.href;
};
