import type { Clock } from '@grantline/clock';
import { ConcurrencyError, type EventStore } from '@grantline/event-store';
import type { TokenEvent } from '@grantline/events';
import type { KeyManager } from '@grantline/keys';
import { digestsEqual } from '@grantline/oauth';
import { compactVerify, createLocalJWKSet } from 'jose';
import { loadFamily, REFRESH_TOKEN, revokeFamily, secretDigestOf } from './grants/refresh-tokens.ts';

/**
 * What a token presented for revocation (RFC 7009) turned out to be. Every outcome but
 * `unsupported` answers 200: an unknown, garbled, expired or another client's token is no error
 * (§2.2), and must reveal nothing about the token.
 */
export type RevocationOutcome =
  | 'refresh_family_revoked'
  | 'access_token_revoked'
  | 'already_revoked'
  | 'expired'
  | 'not_this_clients'
  | 'unknown'
  | 'unsupported';

export interface RevocationDeps {
  store: EventStore;
  keys: KeyManager;
  issuer: string;
  accessTokenTtlSeconds: number;
  clock: Clock;
  /** the client of a live authorization code of this server (a type it cannot revoke), if it is one */
  authorizationCodeClient: (token: string) => Promise<string | undefined>;
}

/**
 * A refresh token of this client revokes its whole family (every generation, so the one the client
 * holds and any rotated copy) and lists the family's live access tokens in `RefreshFamilyRevoked`
 * (reason `client`: the client asked) for the deny-list. A rotated generation of the family still
 * proves the client held it, so it revokes the family too: revoking only takes access away.
 */
export const revokeRefreshToken = async (
  deps: RevocationDeps,
  clientId: string,
  token: string,
): Promise<RevocationOutcome> => {
  const match = REFRESH_TOKEN.exec(token);
  if (!match) return 'unknown';
  const [, familyId, generation, secret] = match as unknown as [string, string, string, string];
  const { state } = await loadFamily(deps.store, familyId, Number(generation));
  if (state.status === 'none') return 'unknown';
  const digest = state.digests.get(Number(generation));
  if (digest === undefined || !digestsEqual(digest, secretDigestOf(secret))) return 'unknown';
  // RFC 7009 §2.1: the server checks the token was issued to the client making the request
  if (state.clientId !== clientId) return 'not_this_clients';
  if (state.status === 'revoked') return 'already_revoked';
  await revokeFamily(deps.store, familyId, 'client', deps.accessTokenTtlSeconds, deps.clock);
  return 'refresh_family_revoked';
};

interface AccessTokenPayload {
  iss?: unknown;
  jti?: unknown;
  exp?: unknown;
  client_id?: unknown;
  grant_id?: unknown;
}

/**
 * A JWT access token is ours only if one of our published keys signed it with `typ: at+jwt` and our
 * issuer; an expired one needs nothing (no resource server accepts it). A live one of this client is
 * revoked by its `jti`: `TokenRevoked` on the token's own stream, once.
 */
export const revokeAccessToken = async (
  deps: RevocationDeps,
  clientId: string,
  token: string,
): Promise<RevocationOutcome> => {
  let payload: AccessTokenPayload;
  try {
    const verified = await compactVerify(token, createLocalJWKSet(deps.keys.jwks()), {
      algorithms: ['ES256'],
    });
    if (verified.protectedHeader.typ !== 'at+jwt') return 'unknown';
    payload = JSON.parse(new TextDecoder().decode(verified.payload)) as AccessTokenPayload;
  } catch {
    return 'unknown';
  }
  if (payload.iss !== deps.issuer || typeof payload.jti !== 'string' || typeof payload.exp !== 'number')
    return 'unknown';
  if (payload.client_id !== clientId) return 'not_this_clients';
  if (payload.exp * 1000 <= deps.clock.now()) return 'expired';
  const stream = `access-token-${payload.jti}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    const { currentVersion, events } = await deps.store.readStream<TokenEvent>(stream);
    if (events.some((e) => e.type === 'TokenRevoked')) return 'already_revoked';
    try {
      await deps.store.append(stream, currentVersion === 0 ? 'no_stream' : currentVersion, [
        {
          type: 'TokenRevoked',
          data: {
            tokenId: payload.jti,
            tokenType: 'access_token',
            clientId,
            ...(typeof payload.grant_id === 'string' && { grantId: payload.grant_id }),
          },
        },
      ]);
      return 'access_token_revoked';
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
    }
  }
  throw new Error(`could not revoke access token ${payload.jti}`);
};

const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const JWE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * RFC 7009 §2.1: `token_type_hint` only orders the look-ups; a token is revoked by what it is. The
 * shapes are disjoint (a refresh token is `<family>.<generation>.<secret>`, an access token a JWS),
 * so a wrong hint costs one failed look-up, never a wrong answer. An authorization code (a JWE) is a
 * type this server does not revoke: `unsupported_token_type` (§2.2.1).
 */
export const revokeToken = async (
  deps: RevocationDeps,
  clientId: string,
  token: string,
  hint: string | undefined,
): Promise<RevocationOutcome> => {
  const lookups = [
    { type: 'refresh_token', applies: REFRESH_TOKEN.test(token), revoke: revokeRefreshToken },
    { type: 'access_token', applies: JWS.test(token), revoke: revokeAccessToken },
  ];
  if (hint === 'access_token') lookups.reverse();
  for (const lookup of lookups) {
    if (!lookup.applies) continue;
    const outcome = await lookup.revoke(deps, clientId, token);
    if (outcome !== 'unknown') return outcome;
  }
  if (!JWE.test(token)) return 'unknown';
  const codeClient = await deps.authorizationCodeClient(token);
  if (codeClient === undefined) return 'unknown';
  return codeClient === clientId ? 'unsupported' : 'not_this_clients';
};
