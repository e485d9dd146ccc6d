import { privateKeysVariable, publicKeysVariable } from '@grantline/keys';
import { baseConfigSchema } from '@grantline/service-kit';
import { z } from 'zod';

const KEK = z.string().regex(/^[A-Za-z0-9_-]{43}$/, '32 bytes, base64url-encoded (43 characters)');

export const tokenConfigSchema = baseConfigSchema
  .extend({
    /** the issuer (`iss`): the public origin of the authorization server */
    GRANTLINE_ISSUER: z.url(),
    /** public URL of this service's token endpoint, an accepted `aud` of client assertions (default: own address) */
    GRANTLINE_TOKEN_ENDPOINT: z.url().optional(),
    /** bearer token of this service's admin API (key rotation) */
    GRANTLINE_ADMIN_TOKEN: z.string().min(32, 'at least 32 characters'),
    /** 32 bytes, base64url: encrypts signing keys at rest; or give a file with GRANTLINE_KEY_ENCRYPTION_KEY_FILE */
    GRANTLINE_KEY_ENCRYPTION_KEY: KEK.optional(),
    GRANTLINE_KEY_ENCRYPTION_KEY_FILE: z.string().optional(),
    /** access token lifetime */
    ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(86_400).default(600),
    /** audience of a token whose client asked for no resource and has none registered */
    DEFAULT_AUDIENCE: z.string().optional(),
    /** how long a new signing key is published before it signs */
    KEY_ROTATION_LEAD_SECONDS: z.coerce.number().int().min(0).default(300),
    /** private: opens authorization codes (a JWK, a JWK set or PEM, newest first; authorization seals to the public key) */
    GRANTLINE_CODE_DECRYPTION_KEY: privateKeysVariable('enc'),
    /** public: the authorization service's code keys (a code must be signed by one of them) */
    GRANTLINE_CODE_VERIFY_KEYS: publicKeysVariable('sig'),
    /** a retry with the previous refresh token within this window is answered, not treated as reuse (0: off) */
    REFRESH_TOKEN_GRACE_SECONDS: z.coerce.number().int().min(0).max(300).default(0),
    /** refresh tokens die when the user signs out of the sign-in that authorized them (off: they outlive it, as an integration's offline access) */
    REFRESH_TOKEN_ENDS_WITH_SESSION: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
    /** a refresh token family unused this long dies */
    REFRESH_TOKEN_IDLE_SECONDS: z.coerce
      .number()
      .int()
      .min(1)
      .default(30 * 86_400),
    /** a refresh token family dies this long after the code was redeemed */
    REFRESH_TOKEN_MAX_LIFETIME_SECONDS: z.coerce
      .number()
      .int()
      .min(60)
      .default(365 * 86_400),
    /** how long a refresh waits for the grant or user to reach this service's projections before refusing */
    PROJECTION_CATCH_UP_MS: z.coerce.number().int().min(0).max(30_000).default(5_000),
    /** failed client authentications per client id per minute before a lock-out */
    CLIENT_AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).default(10),
    /** development only: a client's jwks_uri may name loopback, private and link-local addresses */
    GRANTLINE_ALLOW_PRIVATE_JWKS_URI: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
  })
  .refine(
    (c) => c.GRANTLINE_KEY_ENCRYPTION_KEY !== undefined || c.GRANTLINE_KEY_ENCRYPTION_KEY_FILE !== undefined,
    {
      path: ['GRANTLINE_KEY_ENCRYPTION_KEY'],
      message: 'set it, or GRANTLINE_KEY_ENCRYPTION_KEY_FILE',
    },
  );

export type TokenConfig = z.infer<typeof tokenConfigSchema>;
