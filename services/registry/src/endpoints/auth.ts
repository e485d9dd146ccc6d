import type { EventStore } from '@grantline/event-store';
import { bearerToken, digestsEqual, bearerMatches as matches, sha256Digest } from '@grantline/oauth';
import type { Request } from 'express';
import {
  type InitialAccessTokensState,
  initialAccessTokensDecider,
  initialAccessTokensStream,
} from '../domain/initial-access-tokens.ts';

export const sha256 = sha256Digest;

/** Compares the request's bearer token with a stored digest in constant time. */
export const bearerMatches = (req: Request, digest: string): boolean =>
  matches(req.get('authorization'), digest);

/** The administrator's list of RFC 7591 initial access tokens, folded from its stream. */
export const readInitialAccessTokens = async (store: EventStore): Promise<InitialAccessTokensState> => {
  const { events } = await store.readStream(initialAccessTokensStream);
  return events.reduce(
    (s, e) => initialAccessTokensDecider.evolve(s, e as never),
    initialAccessTokensDecider.initialState(),
  );
};

/**
 * The id of the live initial access token the request bears, if any. Every live token's digest is
 * compared, each in constant time, so the answer's timing does not depend on where a match is.
 */
export const initialAccessTokenOf = async (store: EventStore, req: Request): Promise<string | undefined> => {
  const token = bearerToken(req.get('authorization'));
  if (token === undefined) return undefined;
  const digest = sha256Digest(token);
  const live = (await readInitialAccessTokens(store)).filter((t) => !t.revoked);
  return live.filter((t) => digestsEqual(digest, t.tokenDigest))[0]?.tokenId;
};
