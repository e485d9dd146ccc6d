import { privateKeysVariable } from '@grantline/keys';
import { baseConfigSchema } from '@grantline/service-kit';
import { z } from 'zod';

const flag = z
  .enum(['true', 'false'])
  .default('false')
  .transform((v) => v === 'true');

export const introspectionConfigSchema = baseConfigSchema.extend({
  /** the issuer: `iss` of the access tokens it introspects and of its signed responses */
  GRANTLINE_ISSUER: z.url(),
  /** the token service's JWKS, which verifies access tokens (default `<issuer>/oauth2/jwks`) */
  GRANTLINE_JWKS_URI: z.url().optional(),
  /** public URL of the introspection endpoint, an accepted `aud` of client assertions (with the token endpoint and the issuer) */
  GRANTLINE_INTROSPECTION_ENDPOINT: z.url().optional(),
  GRANTLINE_TOKEN_ENDPOINT: z.url().optional(),
  /** private: signs RFC 9701 JWT introspection responses (its public key at /oauth2/introspection/jwks) */
  GRANTLINE_INTROSPECTION_SIGNING_KEY: privateKeysVariable('sig'),
  /**
   * the longest access-token lifetime (the token service's ACCESS_TOKEN_TTL_SECONDS): a deny-list
   * fact lives this long plus REVOCATION_CLOCK_SKEW_SECONDS after its revocation
   */
  ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(86_400).default(600),
  /** added to every deny-list TTL: clock skew and propagation between token issuance and the revocation */
  REVOCATION_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(3_600).default(60),
  /** how often a heartbeat goes to the revocations topic and the HTTP stream */
  REVOCATION_HEARTBEAT_MS: z.coerce.number().int().min(100).max(60_000).default(1_000),
  /** as the token service's: a refresh token unused this long introspects inactive */
  REFRESH_TOKEN_IDLE_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .default(30 * 86_400),
  /** as the token service's: a refresh token family dies this long after it was issued */
  REFRESH_TOKEN_MAX_LIFETIME_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .default(365 * 86_400),
  /** failed client authentications per client id per minute before a lock-out */
  CLIENT_AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).default(10),
  /** development only: a client's jwks_uri may name loopback, private and link-local addresses */
  GRANTLINE_ALLOW_PRIVATE_JWKS_URI: flag,
});

export type IntrospectionConfig = z.infer<typeof introspectionConfigSchema>;
