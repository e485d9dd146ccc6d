import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '@grantline/clock';
import { ConcurrencyError, type EventStore } from '@grantline/event-store';
import type { RecordedEvent, TokenEvent } from '@grantline/events';
import { evolveFamily, type FamilyState, liveAccessTokens, tokenIdOf } from '../domain/refresh-family.ts';

/** `<family id>.<generation>.<secret>`: the family and generation locate it; the secret proves it. */
export const REFRESH_TOKEN = /^([A-Za-z0-9_-]{22})\.(\d{1,6})\.([A-Za-z0-9_-]{43})$/;

export const familyStream = (familyId: string) => `refresh-${familyId}`;

export const secretDigestOf = (secret: string) => createHash('sha256').update(secret).digest('base64url');

/** A new refresh token: 256-bit secret; only its digest is stored. */
export const newRefreshToken = (familyId: string, generation: number) => {
  const secret = randomBytes(32).toString('base64url');
  return { token: `${tokenIdOf(familyId, generation)}.${secret}`, secretDigest: secretDigestOf(secret) };
};

export const newFamilyId = () => randomBytes(16).toString('base64url');

const fold = (events: readonly RecordedEvent<TokenEvent>[], from: FamilyState = { status: 'none' }) =>
  events.reduce(
    (s, e) =>
      evolveFamily(s, { type: e.type, data: e.data, time: e.time } as Parameters<typeof evolveFamily>[1]),
    from,
  );

/** Generation g was issued by the event at version g + 1: where a partial read from it begins. */
export const versionOfGeneration = (generation: number) => generation + 1;

/**
 * The family's state from a partial read: its first event (who, what, when it began) and its events
 * from the presented generation on, so a refresh costs one short read however long the chain has
 * grown. The version is the last event's folded, never one read separately (a later write would make
 * the append expecting it pass on stale state); an empty tail means the token is refused, no append.
 */
export const familyFromPartialRead = (events: readonly RecordedEvent<TokenEvent>[], fromVersion: number) => {
  const head = events.slice(0, 1);
  const tail = events.filter((e) => e.streamVersion >= fromVersion && e.streamVersion > 1);
  const version = events.at(-1)?.streamVersion ?? 0;
  return { state: fold(tail, fold(head)), version };
};

/**
 * The family's state. With `fromGeneration`, a partial read (`familyFromPartialRead`). Without it,
 * everything (for revocation, which lists every access token).
 */
export const loadFamily = async (store: EventStore, familyId: string, fromGeneration?: number) => {
  const stream = familyStream(familyId);
  if (!fromGeneration || fromGeneration < 1) {
    const { currentVersion, events } = await store.readStream<TokenEvent>(stream);
    return { state: fold(events), version: currentVersion };
  }
  const fromVersion = versionOfGeneration(fromGeneration);
  const { events } = await store.readStream<TokenEvent>(stream, { fromVersion, withFirst: true });
  return familyFromPartialRead(events, fromVersion);
};

/** Ends a family (idempotent): its refresh tokens stop working; its access tokens are listed for the deny-list. */
export const revokeFamily = async (
  store: EventStore,
  familyId: string,
  reason: 'reuse' | 'code_replay' | 'grant_revoked' | 'client',
  accessTokenTtlSeconds: number,
  clock: Clock,
): Promise<void> => {
  for (let attempt = 0; attempt < 10; attempt++) {
    const { state, version } = await loadFamily(store, familyId);
    if (state.status !== 'active') return;
    try {
      await store.append(familyStream(familyId), version, [
        {
          type: 'RefreshFamilyRevoked',
          data: {
            familyId,
            clientId: state.clientId,
            grantId: state.grantId,
            reason,
            accessTokenIds: liveAccessTokens(state, clock.now(), accessTokenTtlSeconds),
          },
        },
      ]);
      return;
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
    }
  }
  throw new Error(`could not revoke refresh token family ${familyId}`);
};
