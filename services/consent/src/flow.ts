import type { EventStore } from '@grantline/event-store';
import {
  type FlowKeys,
  SESSION_COOKIE,
  STATEMENT,
  STATEMENT_TTL_SECONDS,
  type Verified,
} from '@grantline/flow';
import type { GrantQueries } from '@grantline/grant-directory';
import { cookiesOf, randomToken, type SessionRevocations, type SingleUse } from '@grantline/oauth';
import type { ClientDirectory, People } from '@grantline/registry-directory';
import type { Request } from 'express';

// the hand-off contract (statements, their `typ`s, lifetimes and keys by purpose; cookie names) is packages/flow
/** A consent challenge as verified: what the authorization service signed, with its `exp`. */
export type ConsentChallenge = Verified<typeof STATEMENT.consent>;

export interface ConsentDeps {
  /** verifies sessions and consent challenges (public keys only), signs verdicts; CSRF */
  keys: FlowKeys;
  clients: ClientDirectory;
  people: People;
  grants: GrantQueries;
  store: EventStore;
  sessions: SessionRevocations;
  /** claims a statement's `jti` once (the consent form of a challenge) */
  singleUse: SingleUse;
  /** `<authorization service>/oauth2/authorize/complete` */
  completeUrl: string;
  /**
   * Read-your-writes for a grant written here: resolves once every service projecting the grants
   * topic has applied it (bounded; a timeout is logged, the write stands)
   */
  awaitProjected: (position: string) => Promise<unknown>;
}

/**
 * The challenge, if it is valid and was issued to the session of this browser: the consent service
 * trusts nothing in the query string that the authorization service did not sign.
 */
export const challengeFor = async (
  deps: ConsentDeps,
  req: Request,
  raw: unknown,
): Promise<ConsentChallenge | undefined> => {
  if (typeof raw !== 'string') return undefined;
  const challenge = await deps.keys.verify(STATEMENT.consent, raw);
  if (!challenge) return undefined;
  const session = await deps.keys.verify(STATEMENT.session, cookiesOf(req)[SESSION_COOKIE]);
  if (session?.sid !== challenge.sid || (await deps.sessions.isRevoked(session.sid))) return undefined;
  return challenge;
};

/** The way back to the authorization service, with the decision signed. */
export const verdictLocation = async (
  deps: ConsentDeps,
  challenge: ConsentChallenge,
  outcome:
    | { grantId: string; scopes: string[]; organisations: string[] }
    | { error: string; description: string },
): Promise<string> => {
  const body =
    'error' in outcome
      ? { error: outcome.error, error_description: outcome.description }
      : { grant_id: outcome.grantId, scopes: outcome.scopes, organisations: outcome.organisations };
  const verdict = await deps.keys.sign(
    STATEMENT.verdict,
    {
      req: challenge.req,
      sid: challenge.sid,
      sub: challenge.sub,
      auth_time: challenge.auth_time,
      // the authorization service accepts each verdict once
      jti: randomToken(16),
      ...body,
    },
    STATEMENT_TTL_SECONDS.verdict,
  );
  const url = new URL(deps.completeUrl);
  url.searchParams.set('consent_verdict', verdict);
  return url.href;
};

/** CSRF binding of the consent form: the session and this one flow. */
export const csrfBinding = (c: ConsentChallenge) => `consent:${c.sid}:${c.jti}`;
