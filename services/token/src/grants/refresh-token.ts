import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '@grantline/clock';
import { ConcurrencyError, type EventStore } from '@grantline/event-store';
import {
  digestsEqual,
  InvalidGrant,
  InvalidRequest,
  InvalidScope,
  parseScope,
  UnauthorizedClient,
} from '@grantline/oauth';
import { decideRefresh } from '../domain/refresh-family.ts';
import { type AccessTokenIssuer, newTokenId } from '../issuer.ts';
import { audienceFor } from './audience.ts';
import type { Grant } from './grant.ts';
import {
  familyFromPartialRead,
  familyStream,
  loadFamily,
  newRefreshToken,
  REFRESH_TOKEN,
  secretDigestOf,
  versionOfGeneration,
} from './refresh-tokens.ts';
import { refuseRevoked, type StandingReads } from './standing.ts';

export interface RefreshPolicy {
  /** a retry with the previous token within this many seconds is answered (0: off, the default) */
  graceSeconds: number;
  /** a family unused this long dies */
  idleSeconds: number;
  /** a family dies this long after its code was redeemed, used or not */
  maxLifetimeSeconds: number;
  accessTokenTtlSeconds: number;
  /** how long a refresh waits for this service's projections to learn of a grant or user they do not know yet */
  catchUpMs: number;
}

/**
 * The family from the presented generation on, and the standing of what it names, in one read. A
 * grant or user this service has not projected yet (its consumers lag, or a projection is being
 * rebuilt) is waited for briefly; still unknown then, the caller refuses: the revoked, disabled and
 * password-change checks cannot be skipped by a lag.
 */
const familyAndStanding = async (
  reads: StandingReads,
  familyId: string,
  generation: number,
  catchUpMs: number,
) => {
  // a wait for projections measures elapsed time, not domain time: the system clock
  const deadline = Date.now() + catchUpMs;
  const fromVersion = versionOfGeneration(generation);
  for (;;) {
    const { events, standing } = await reads.family(familyStream(familyId), fromVersion);
    const family = familyFromPartialRead(events, fromVersion);
    if (!standing || (standing.grant && standing.user) || Date.now() >= deadline)
      return { ...family, standing };
    await sleep(Math.min(50, Math.max(1, deadline - Date.now())));
  }
};

/**
 * RFC 6749 §6 with rotation (RFC 9700 §4.14.2): every use returns a new refresh token; the scope
 * may only narrow; a rotated token presented again revokes the family and, through the consent
 * service, the grant. Refused once the grant is revoked, its organisations are all disconnected,
 * or the user's password changed or the user was disabled after the family began, or the admin
 * revoked the subject or the client since. Concurrent refreshes with one token race on the family
 * stream's version: one rotates, the other is reuse.
 *
 * F10, a revocation racing the refresh: the rotation and its access token are recorded by a
 * statement that checks the grant and the admin's revocations itself (`stillGranted`). So a token
 * handed out was recorded before this service's projection applied the revocation, and none is
 * recorded after it. One read, one commit.
 */
export const refreshTokenGrant = (deps: {
  store: EventStore;
  /** the family with the grant, the user, the admin's revocations and the sign-in it names (ended sign-ins count when configured) */
  standing: StandingReads;
  issue: AccessTokenIssuer;
  policy: RefreshPolicy;
  defaultAudience: string;
  /** the family's ages and lifetimes are measured on it */
  clock: Clock;
}): Grant => ({
  grantType: 'refresh_token',
  async handle({ client, form }) {
    if (!client.grantTypes.includes('refresh_token'))
      throw new UnauthorizedClient('client is not allowed the refresh_token grant');
    if (!form.refresh_token) throw new InvalidRequest('refresh_token is required');
    const match = REFRESH_TOKEN.exec(form.refresh_token);
    if (!match) throw new InvalidGrant('refresh token is invalid');
    const [, familyId, generation, secret] = match as unknown as [string, string, string, string];
    const requested = parseScope(form.scope);
    if (!requested) throw new InvalidScope('scope is malformed');

    for (let attempt = 0; attempt < 5; attempt++) {
      const presented = Number(generation);
      const read = await familyAndStanding(deps.standing, familyId, presented, deps.policy.catchUpMs);
      let { state, version } = read;
      if (state.status === 'none' || !read.standing) throw new InvalidGrant('refresh token is invalid');
      const { grant, user, revokedAt, sessionEnded } = read.standing;
      const names = { grantId: state.grantId, subject: state.subject, clientId: state.clientId };
      refuseRevoked({ grantStatus: grant?.status, revokedAt }, state.startedAt);
      if (!grant || !user) throw new InvalidGrant('the grant behind this refresh token is unknown');
      if (user.status === 'disabled') throw new InvalidGrant('the user is disabled');
      if (sessionEnded)
        throw new InvalidGrant('the user signed out of the session that authorized this token');
      const next = newRefreshToken(familyId, state.generation + 1);
      const accessTokenId = newTokenId();
      const presentation = {
        generation: presented,
        secretDigest: secretDigestOf(secret),
        clientId: client.clientId,
        now: deps.clock.now(),
        ...deps.policy,
        notBefore: user.credentialsChangedAt?.getTime(),
        equal: digestsEqual,
        next: { secretDigest: next.secretDigest, accessTokenId },
      };
      let decision = decideRefresh(state, presentation);
      if (decision.outcome === 'reuse') {
        // revocation lists every access token of the family: read all of it
        ({ state, version } = await loadFamily(deps.store, familyId));
        decision = decideRefresh(state, presentation);
      }
      if (decision.outcome === 'refused') throw new InvalidGrant(decision.reason);
      if (decision.outcome === 'rotate' && state.status === 'active') {
        // the grant is the authority: its current scopes and organisations bound the family's
        const scopes = state.scopes.filter((s) => grant.scopes.includes(s) && client.scopes.includes(s));
        // ... and so do the user's current memberships
        const organisations = grant.organisations.filter((o) => user.organisations.includes(o));
        if (organisations.length === 0) throw new InvalidGrant('no organisation is connected to the grant');
        const narrowed = requested.length > 0 ? requested : scopes;
        const wider = narrowed.filter((s) => !scopes.includes(s));
        if (wider.length > 0) throw new InvalidScope(`scope exceeds the grant: ${wider.join(' ')}`);
        const audience = audienceFor(state.resources, client.resources, deps.defaultAudience);
        const token = deps.issue.prepare({
          jti: accessTokenId,
          subject: state.subject,
          clientId: client.clientId,
          scopes: narrowed,
          audience,
          grantType: 'refresh_token',
          grantId: state.grantId,
          organisations,
        });
        // the rotation and the access token's event in one statement, under F10's guard: both
        // recorded, or neither
        try {
          await deps.store.append(familyStream(familyId), version, decision.events, {
            newStreams: [token.record],
            guard: deps.standing.stillGranted(names, state.startedAt),
          });
        } catch (error) {
          if (error instanceof ConcurrencyError) continue;
          throw error;
        }
        token.recorded();
        const response = token.response;
        return { ...response, refresh_token: next.token, grant_id: state.grantId };
      }
      try {
        await deps.store.append(familyStream(familyId), version, decision.events);
      } catch (error) {
        if (error instanceof ConcurrencyError) continue;
        throw error;
      }
      throw new InvalidGrant('refresh token was already used; the grant is revoked');
    }
    throw new InvalidGrant('refresh token is busy; try again');
  },
});
