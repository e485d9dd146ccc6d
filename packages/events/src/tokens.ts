import { z } from 'zod';
import { Id, Scopes, Timestamp } from './common.ts';

/** SHA-256 of a refresh token's secret part, base64url: lets the token service check it; not the token. */
const SecretDigest = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'base64url SHA-256 digest');

/**
 * Token facts (owned by the token service). Claims, ids and digests only: token material never
 * appears in an event. Streams: `access-token-<jti>`, `code-<code id>`, `refresh-<family id>`.
 */
export const tokenEventSchemas = {
  AccessTokenIssued: z.strictObject({
    jti: Id,
    clientId: Id,
    subject: Id,
    grantType: z.enum(['client_credentials', 'authorization_code', 'refresh_token']),
    scopes: Scopes,
    audience: z.array(z.string().min(1).max(500)).max(20),
    expiresAt: Timestamp,
    grantId: Id.optional(),
    organisations: z.array(Id).max(100).optional(),
  }),
  /** first (and only accepted) redemption of an authorization code */
  CodeRedeemed: z.strictObject({
    codeId: Id,
    clientId: Id,
    grantId: Id,
    subject: Id,
    accessTokenId: Id,
    familyId: Id.optional(),
  }),
  /** a valid second redemption: everything issued from the code is revoked */
  CodeReplayDetected: z.strictObject({
    codeId: Id,
    clientId: Id,
    grantId: Id,
    /** the access token issued at the first redemption, for the deny-list */
    accessTokenIds: z.array(Id).max(1),
  }),
  /** a refresh token family starts (generation 0) */
  RefreshTokenIssued: z.strictObject({
    familyId: Id,
    tokenId: Id,
    secretDigest: SecretDigest,
    clientId: Id,
    grantId: Id,
    subject: Id,
    scopes: Scopes,
    organisations: z.array(Id).max(100),
    resources: z.array(z.string().max(500)).max(20),
    /** the access token issued with it */
    accessTokenId: Id,
    codeId: Id.optional(),
    /** the sign-in the code came from (refresh may be configured to end with it) */
    sessionId: Id.optional(),
  }),
  RefreshTokenRotated: z.strictObject({
    familyId: Id,
    previousTokenId: Id,
    nextTokenId: Id,
    secretDigest: SecretDigest,
    clientId: Id,
    grantId: Id,
    accessTokenId: Id,
  }),
  RefreshTokenReuseDetected: z.strictObject({ familyId: Id, tokenId: Id, clientId: Id, grantId: Id }),
  /**
   * the family's refresh tokens are dead; `accessTokenIds` are the access tokens it issued. Reason
   * `client`: the client revoked it (RFC 7009); `grant_revoked`: its grant was revoked while a
   * refresh or redemption was in flight (the token it issued was never handed out).
   */
  RefreshFamilyRevoked: z.strictObject({
    familyId: Id,
    clientId: Id,
    grantId: Id,
    reason: z.enum(['reuse', 'code_replay', 'grant_revoked', 'client']),
    accessTokenIds: z.array(Id).max(10_000),
  }),
  TokenRevoked: z.strictObject({
    tokenId: Id,
    tokenType: z.enum(['access_token', 'refresh_token']),
    clientId: Id,
    grantId: Id.optional(),
  }),
} as const;
