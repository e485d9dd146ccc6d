import { SPANS } from '@grantline/telemetry/names';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { createRemoteJWKSet, errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import type { DenyList } from './deny-list.ts';
import {
  InsufficientScope,
  InvalidToken,
  RevocationStateUnavailable,
  SigningKeysUnavailable,
} from './errors.ts';
import { type IntrospectionOptions, introspector } from './introspection.ts';
import { DECISION, instruments } from './telemetry.ts';
import { VerifiedTokenCache } from './verified-cache.ts';

const tracer = trace.getTracer('@grantline/resource-server');

/**
 * Whether jose failed to fetch the key set rather than judged the token: a timeout, a network error,
 * or a response other than 200 (jose's generic error). An unknown `kid` is the token's fault.
 */
const keysUnavailable = (error: unknown) =>
  error instanceof errors.JWKSTimeout ||
  !(error instanceof errors.JOSEError) ||
  error.code === 'ERR_JOSE_GENERIC';

/** The claims a Grantline access token carries (RFC 9068 plus `grant_id` and `organisations`). */
export interface GrantlineAccessToken extends JWTPayload {
  sub: string;
  client_id: string;
  jti: string;
  scope?: string;
  grant_id?: string;
  organisations?: string[];
}

/**
 * What to do when the deny-list cannot vouch for a token (not bootstrapped, the feed down, or its
 * last heartbeat older than the budget): `fail-closed` answers 503 with `Retry-After`; `introspect`
 * asks the authorization server (RFC 7662) per request. Never a silent fail-open.
 */
export type StalenessPolicy = 'fail-closed' | 'introspect';

export interface ResourceServerOptions {
  /** the authorization server's issuer, compared exactly with `iss` */
  issuer: string;
  /** this resource server's identifier: tokens for other audiences are refused (RFC 9700 §2.3) */
  audience: string;
  /** where the signing keys are; refetched on an unknown `kid` (key rotation), at most once per cooldown */
  jwksUri: string;
  /** the least time between two JWKS fetches, seconds (default 30): a flood of unknown `kid`s costs one */
  jwksCooldownSeconds?: number;
  /** clock skew tolerated on `exp`/`nbf` against the authorization server's clock, seconds (default 5) */
  clockToleranceSeconds?: number;
  /** this server's clock (default: the system clock) */
  now?: () => Date;
  /** the deny-list (a subscriber's); without one, revoked tokens are honoured until they expire */
  revocations?: { denyList: DenyList };
  /** the policy when the deny-list is stale (default `fail-closed`) */
  policy?: StalenessPolicy;
  /** the oldest heartbeat the deny-list may go by, seconds (default 5) */
  freshnessBudgetSeconds?: number;
  /** required by the `introspect` policy */
  introspection?: IntrospectionOptions;
  /**
   * how many verified tokens to remember, so that a token presented again skips its signature
   * verification until its `exp` (the deny-list, organisation and scopes are still checked on every
   * call); default 10,000, 0 turns the cache off
   */
  verifiedTokenCacheSize?: number;
}

export interface VerifyOptions {
  /** the organisation the request targets: the token must name it and it must not be disconnected */
  organisation?: string;
  /** every one of these scopes is required */
  scopes?: readonly string[];
}

/**
 * The keys of the deny-list that would deny this token for this organisation (README, the topic
 * contract). Access tokens do not name their refresh family: a family's revocation reaches them as
 * `jti:` facts, one per access token of the family (`RefreshFamilyRevoked` lists them).
 */
export const denyKeys = (token: GrantlineAccessToken, organisation?: string): string[] => [
  `jti:${token.jti}`,
  `sub:${token.sub}`,
  `client:${token.client_id}`,
  ...(token.grant_id ? [`grant:${token.grant_id}`] : []),
  ...(token.grant_id && organisation ? [`grant-org:${token.grant_id}:${organisation}`] : []),
];

const decided = (decision: string) => instruments().decisions.add(1, { [DECISION]: decision });

/**
 * A framework-free verifier: signature and claims (RFC 9068 §4), the deny-list or, when it is
 * stale, the declared policy, then the organisation and scopes. Throws a `BearerError` (401/403)
 * or `RevocationStateUnavailable` (503); returns the claims.
 */
export const createVerifier = (options: ResourceServerOptions) => {
  const policy = options.policy ?? 'fail-closed';
  if (policy === 'introspect' && !options.introspection)
    throw new TypeError(
      'the introspect policy needs introspection options (endpoint and client credentials)',
    );
  if (options.introspection && !options.revocations)
    throw new TypeError('introspection is the fallback of a deny-list: pass revocations too');
  const budgetMs = (options.freshnessBudgetSeconds ?? 5) * 1_000;
  const introspect = options.introspection && introspector(options.introspection);
  const verified = new VerifiedTokenCache(options.verifiedTokenCacheSize ?? 10_000, () =>
    options.now ? options.now().getTime() : Date.now(),
  );
  const keys: JWTVerifyGetKey = createRemoteJWKSet(new URL(options.jwksUri), {
    cooldownDuration: (options.jwksCooldownSeconds ?? 30) * 1000,
  });

  const checkRevocation = async (jwt: string, token: GrantlineAccessToken, organisation?: string) => {
    const denyList = options.revocations?.denyList;
    if (!denyList) return;
    if (denyList.isFresh(budgetMs)) {
      if (denyList.revoked(denyKeys(token, organisation), (token.iat ?? 0) * 1_000))
        throw new InvalidToken('the access token has been revoked');
      return;
    }
    if (!introspect || policy === 'fail-closed')
      throw new RevocationStateUnavailable('revocation state is stale', 1);
    decided('introspected');
    const answer = await introspect(jwt);
    if (organisation && !answer.organisations?.includes(organisation))
      throw new InvalidToken('the organisation was disconnected from this grant');
  };

  /** the check, in a span of its own under the active one (the request's, or the caller's trace) */
  const verify = (jwt: string, verifyOptions: VerifyOptions = {}): Promise<GrantlineAccessToken> =>
    tracer.startActiveSpan(SPANS.resourceServerCheck, async (span) => {
      try {
        return await check(jwt, verifyOptions);
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        throw error;
      } finally {
        span.end();
      }
    });

  const check = async (jwt: string, verifyOptions: VerifyOptions): Promise<GrantlineAccessToken> => {
    let token: GrantlineAccessToken | undefined = verified.get(jwt);
    if (!token)
      try {
        ({ payload: token } = await jwtVerify<GrantlineAccessToken>(jwt, keys, {
          issuer: options.issuer,
          audience: options.audience,
          typ: 'at+jwt',
          algorithms: ['ES256'],
          clockTolerance: options.clockToleranceSeconds ?? 5,
          ...(options.now && { currentDate: options.now() }),
          requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat'],
        }));
        verified.set(jwt, token);
      } catch (error) {
        if (keysUnavailable(error)) {
          decided('unavailable');
          throw new SigningKeysUnavailable('the signing keys could not be fetched', 1);
        }
        decided('invalid');
        throw new InvalidToken('the access token is invalid or expired');
      }
    const { organisation, scopes = [] } = verifyOptions;
    try {
      await checkRevocation(jwt, token, organisation);
    } catch (error) {
      decided(error instanceof InvalidToken ? 'revoked' : 'unavailable');
      throw error;
    }
    const held = new Set((token.scope ?? '').split(' '));
    if (!scopes.every((s) => held.has(s))) {
      decided('insufficient_scope');
      throw new InsufficientScope('the access token lacks a required scope', scopes.join(' '));
    }
    if (organisation !== undefined && !token.organisations?.includes(organisation)) {
      decided('insufficient_scope');
      throw new InsufficientScope('the organisation is not connected to this grant');
    }
    decided('allowed');
    return token;
  };

  return { verify };
};

export type Verifier = ReturnType<typeof createVerifier>;
export { RevocationStateUnavailable };
