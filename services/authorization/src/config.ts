import { baseConfigSchema } from '@grantline/service-kit';
import { z } from 'zod';

export const FlowSecret = z
  .string()
  .regex(
    /^[A-Za-z0-9_-]{43}(,[A-Za-z0-9_-]{43})*$/,
    '32 bytes, base64url (43 characters); comma-separated to rotate',
  );

export const authorizationConfigSchema = baseConfigSchema.extend({
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// URL' }),
  /** the issuer: this service's public origin, where clients discover the server */
  GRANTLINE_ISSUER: z.url().optional(),
  /** public URLs of the other services' endpoints; default: the issuer's origin (gateway mode) */
  GRANTLINE_TOKEN_ENDPOINT: z.url().optional(),
  GRANTLINE_JWKS_URI: z.url().optional(),
  GRANTLINE_REGISTRATION_ENDPOINT: z.url().optional(),
  /** the consent service's page, `<issuer>/consent` behind a gateway */
  GRANTLINE_CONSENT_URL: z.url().optional(),
  /** the consent service's origin, for the Grant Management endpoint in the metadata */
  GRANTLINE_GRANTS_ENDPOINT: z.url().optional(),
  /** shared with consent and token: signs flow challenges and sessions, encrypts authorization codes */
  GRANTLINE_FLOW_SECRET: FlowSecret,
  /** lifetime of an authorization code (FAPI 2.0: at most 60 s) */
  AUTHORIZATION_CODE_TTL_SECONDS: z.coerce.number().int().min(1).max(60).default(60),
  /** how long a sign-in lasts */
  SESSION_TTL_SECONDS: z.coerce.number().int().min(60).default(28_800),
  /** failed sign-ins per username, and per client address, within the window before a lock-out */
  LOGIN_FAILURES_PER_USERNAME: z.coerce.number().int().min(1).default(5),
  LOGIN_FAILURES_PER_ADDRESS: z.coerce.number().int().min(1).default(100),
  /**
   * failed sign-ins within the window across every username and address, all instances together,
   * before every sign-in waits for the window to end: the ceiling on a password spray from many
   * addresses. Set well above the platform's normal rate of mistyped passwords.
   */
  LOGIN_FAILURES_GLOBAL: z.coerce.number().int().min(1).default(10_000),
  LOGIN_LOCKOUT_SECONDS: z.coerce.number().int().min(1).default(900),
});

export type AuthorizationConfig = z.infer<typeof authorizationConfigSchema>;
