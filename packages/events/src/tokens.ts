import { z } from 'zod';
import { Id, Scopes, Timestamp } from './common.ts';

/** Token facts. Claims and ids only: token material never appears in an event. */
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
  CodeRedeemed: z.strictObject({ codeId: Id, clientId: Id, grantId: Id, subject: Id }),
  RefreshTokenRotated: z.strictObject({
    familyId: Id,
    previousTokenId: Id,
    nextTokenId: Id,
    clientId: Id,
    grantId: Id,
  }),
  RefreshTokenReuseDetected: z.strictObject({ familyId: Id, tokenId: Id, clientId: Id, grantId: Id }),
  TokenRevoked: z.strictObject({
    tokenId: Id,
    tokenType: z.enum(['access_token', 'refresh_token']),
    clientId: Id,
    grantId: Id.optional(),
  }),
} as const;
