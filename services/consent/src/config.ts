import { privateKeysVariable, publicKeysVariable, symmetricKeysVariable } from '@grantline/keys';
import { baseConfigSchema } from '@grantline/service-kit';
import { z } from 'zod';

export const consentConfigSchema = baseConfigSchema.extend({
  /** the issuer (the authorization service's public origin) */
  GRANTLINE_ISSUER: z.url(),
  /** where the consent verdict goes: the authorization service's origin (default: the issuer) */
  GRANTLINE_AUTHORIZATION_URL: z.url().optional(),
  /** public URL of the token endpoint, an accepted `aud` of client assertions */
  GRANTLINE_TOKEN_ENDPOINT: z.url().optional(),
  /** public: the authorization service's session keys (verifies sessions and consent challenges, signs none) */
  GRANTLINE_SESSION_VERIFY_KEYS: publicKeysVariable('sig'),
  /** private: signs consent verdicts (a JWK, a JWK set or PEM, newest first; authorization holds the public key) */
  GRANTLINE_VERDICT_SIGNING_KEY: privateKeysVariable('sig'),
  /** this service's own CSRF key(s): 32 bytes base64url, comma-separated to rotate; shared with no other service */
  GRANTLINE_CSRF_KEY: symmetricKeysVariable(),
  /** bearer token of this service's admin API (subject and client revocation, management port) */
  GRANTLINE_ADMIN_TOKEN: z.string().min(32, 'at least 32 characters'),
  /** an admin revocation answers once every service projecting grants has applied it, or after this long */
  REVOCATION_VISIBILITY_TIMEOUT_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
  /** failed client authentications per client id per minute before a lock-out (Grant Management API) */
  CLIENT_AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).default(10),
  /** development only: a client's jwks_uri may name loopback, private and link-local addresses */
  GRANTLINE_ALLOW_PRIVATE_JWKS_URI: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
});

export type ConsentConfig = z.infer<typeof consentConfigSchema>;
