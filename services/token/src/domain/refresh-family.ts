import type { TokenEvent } from '@grantline/events';

/**
 * A refresh token family (stream `refresh-<family id>`): the chain of refresh tokens rotated from
 * one authorization code. A token reads `<family id>.<generation>.<secret>`; the family keeps each
 * generation's secret digest, so a presented token is either the current one, a rotated (reused)
 * one, or not ours. Pure: time, ids and digests come in.
 */
export type FamilyState =
  | { status: 'none' }
  | {
      status: 'active' | 'revoked';
      familyId: string;
      clientId: string;
      grantId: string;
      subject: string;
      scopes: string[];
      organisations: string[];
      resources: string[];
      /** the sign-in the family came from, if known */
      sessionId?: string | undefined;
      /** the current generation */
      generation: number;
      /** secret digest of each generation read (a partial read holds the presented one onwards) */
      digests: Map<number, string>;
      /** when the family began (ms) */
      startedAt: number;
      /** when each generation read was issued (ms) */
      issuedAt: Map<number, number>;
      accessTokenIds: string[];
    };

type Event = Extract<
  TokenEvent,
  {
    type: 'RefreshTokenIssued' | 'RefreshTokenRotated' | 'RefreshTokenReuseDetected' | 'RefreshFamilyRevoked';
  }
>;
type Recorded = Event & { time: Date };

export const tokenIdOf = (familyId: string, generation: number) => `${familyId}.${generation}`;
const generationOf = (tokenId: string) => Number(tokenId.slice(tokenId.lastIndexOf('.') + 1));

export const evolveFamily = (s: FamilyState, e: Recorded): FamilyState => {
  switch (e.type) {
    case 'RefreshTokenIssued':
      return {
        status: 'active',
        familyId: e.data.familyId,
        clientId: e.data.clientId,
        grantId: e.data.grantId,
        subject: e.data.subject,
        scopes: e.data.scopes,
        organisations: e.data.organisations,
        resources: e.data.resources,
        sessionId: e.data.sessionId,
        generation: 0,
        digests: new Map([[0, e.data.secretDigest]]),
        startedAt: e.time.getTime(),
        issuedAt: new Map([[0, e.time.getTime()]]),
        accessTokenIds: [e.data.accessTokenId],
      };
    case 'RefreshTokenRotated': {
      if (s.status === 'none') return s;
      const generation = generationOf(e.data.nextTokenId);
      // the maps belong to this fold (a fresh state per load): extended in place, not copied per event
      s.digests.set(generation, e.data.secretDigest);
      s.issuedAt.set(generation, e.time.getTime());
      s.accessTokenIds.push(e.data.accessTokenId);
      return { ...s, generation };
    }
    case 'RefreshTokenReuseDetected':
      return s;
    case 'RefreshFamilyRevoked':
      return s.status === 'none' ? s : { ...s, status: 'revoked' };
    default:
      return s;
  }
};

/**
 * The family's access tokens that may still be valid (issued within one access token lifetime): the
 * ones a revocation must name. Generation g issued `accessTokenIds[g]`; needs a full read.
 */
export const liveAccessTokens = (s: FamilyState, now: number, accessTokenTtlSeconds: number): string[] =>
  s.status === 'none'
    ? []
    : s.accessTokenIds.filter((_, g) => now - (s.issuedAt.get(g) ?? 0) < (accessTokenTtlSeconds + 60) * 1000);

export interface RefreshAttempt {
  generation: number;
  secretDigest: string;
  clientId: string;
  now: number;
  /** a retry of the previous token within this window is answered, not treated as reuse (0: off) */
  graceSeconds: number;
  idleSeconds: number;
  maxLifetimeSeconds: number;
  /** access tokens older than this are expired, so a revocation need not name them */
  accessTokenTtlSeconds: number;
  /** refresh tokens issued before this instant are dead (password change, user disabled) */
  notBefore?: number | undefined;
  /** digests are compared by the caller-supplied constant-time function */
  equal: (a: string, b: string) => boolean;
  next: { secretDigest: string; accessTokenId: string };
}

export type RefreshDecision =
  | { outcome: 'rotate'; events: Event[] }
  | { outcome: 'reuse'; events: Event[] }
  | { outcome: 'refused'; reason: string };

/** RFC 9700 §4.14.2: rotate on every use; a rotated token used again revokes the whole family. */
export const decideRefresh = (s: FamilyState, a: RefreshAttempt): RefreshDecision => {
  if (s.status === 'none') return { outcome: 'refused', reason: 'refresh token is invalid' };
  const digest = s.digests.get(a.generation);
  const known = digest !== undefined && a.generation <= s.generation && a.equal(digest, a.secretDigest);
  if (!known || s.clientId !== a.clientId) return { outcome: 'refused', reason: 'refresh token is invalid' };
  if (s.status === 'revoked') return { outcome: 'refused', reason: 'refresh token is revoked' };
  const lastUse = s.issuedAt.get(s.generation)!;
  if (a.now - s.startedAt > a.maxLifetimeSeconds * 1000 || a.now - lastUse > a.idleSeconds * 1000)
    return { outcome: 'refused', reason: 'refresh token has expired' };
  if (a.notBefore !== undefined && s.startedAt < a.notBefore)
    return { outcome: 'refused', reason: 'refresh token was revoked by a security event' };
  const ids = { familyId: s.familyId, clientId: s.clientId, grantId: s.grantId };
  // grace 0 is off, even within the rotation's own millisecond (a race of two uses of one token)
  const inGrace =
    a.graceSeconds > 0 && a.generation === s.generation - 1 && a.now - lastUse <= a.graceSeconds * 1000;
  if (a.generation < s.generation && !inGrace) {
    return {
      outcome: 'reuse',
      events: [
        { type: 'RefreshTokenReuseDetected', data: { ...ids, tokenId: tokenIdOf(s.familyId, a.generation) } },
        {
          type: 'RefreshFamilyRevoked',
          data: {
            ...ids,
            reason: 'reuse',
            accessTokenIds: liveAccessTokens(s, a.now, a.accessTokenTtlSeconds),
          },
        },
      ],
    };
  }
  return {
    outcome: 'rotate',
    events: [
      {
        type: 'RefreshTokenRotated',
        data: {
          ...ids,
          previousTokenId: tokenIdOf(s.familyId, s.generation),
          nextTokenId: tokenIdOf(s.familyId, s.generation + 1),
          secretDigest: a.next.secretDigest,
          accessTokenId: a.next.accessTokenId,
        },
      },
    ],
  };
};
