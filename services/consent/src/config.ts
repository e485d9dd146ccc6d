import { baseConfigSchema } from '@grantline/service-kit';
import { z } from 'zod';

export const consentConfigSchema = baseConfigSchema.extend({
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// URL' }),
  /** the issuer (the authorization service's public origin) */
  GRANTLINE_ISSUER: z.url(),
  /** where the consent verdict goes: the authorization service's origin (default: the issuer) */
  GRANTLINE_AUTHORIZATION_URL: z.url().optional(),
  /** public URL of the token endpoint, an accepted `aud` of client assertions */
  GRANTLINE_TOKEN_ENDPOINT: z.url().optional(),
  /** shared with authorization and token: verifies challenges and sessions, signs verdicts */
  GRANTLINE_FLOW_SECRET: z
    .string()
    .regex(
      /^[A-Za-z0-9_-]{43}(,[A-Za-z0-9_-]{43})*$/,
      '32 bytes, base64url (43 characters); comma-separated to rotate',
    ),
  /** failed client authentications per client id per minute before a lock-out (Grant Management API) */
  CLIENT_AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(1).default(10),
  /** development only: a client's jwks_uri may name loopback, private and link-local addresses */
  GRANTLINE_ALLOW_PRIVATE_JWKS_URI: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
});

export type ConsentConfig = z.infer<typeof consentConfigSchema>;
