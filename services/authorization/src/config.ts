import { privateKeysVariable, publicKeysVariable, symmetricKeysVariable } from '@grantline/keys';
import { passwordCostVariable } from '@grantline/oauth';
import { baseConfigSchema } from '@grantline/service-kit';
import { z } from 'zod';

export const authorizationConfigSchema = baseConfigSchema.extend({
  /** the issuer: this service's public origin, where clients discover the server */
  GRANTLINE_ISSUER: z.url(),
  /** public URLs of the other services' endpoints; default: the issuer's origin (gateway mode) */
  GRANTLINE_TOKEN_ENDPOINT: z.url().optional(),
  GRANTLINE_JWKS_URI: z.url().optional(),
  /** the token service's RFC 7009 revocation endpoint, for the metadata (default `<issuer>/oauth2/revoke`) */
  GRANTLINE_REVOCATION_ENDPOINT: z.url().optional(),
  GRANTLINE_REGISTRATION_ENDPOINT: z.url().optional(),
  /** the consent service's page, `<issuer>/consent` behind a gateway */
  GRANTLINE_CONSENT_URL: z.url().optional(),
  /** the consent service's origin, for the Grant Management endpoint in the metadata */
  GRANTLINE_GRANTS_ENDPOINT: z.url().optional(),
  /** the introspection service's endpoint (RFC 7662), `<issuer>/oauth2/introspect` behind a gateway */
  GRANTLINE_INTROSPECTION_ENDPOINT: z.url().optional(),
  // Keys by purpose (packages/keys KEY_PURPOSES; README "Keys"). Private keys: a JWK, a JWK set or
  // PEM, newest first (the first signs, all verify). Public keys: a JWK or a JWK set.
  /** private: signs sessions and login/consent challenges (consent holds the public key) */
  GRANTLINE_SESSION_SIGNING_KEY: privateKeysVariable('sig'),
  /** private: signs authorization codes (the token service holds the public key) */
  GRANTLINE_CODE_SIGNING_KEY: privateKeysVariable('sig'),
  /** public: the token service's code key; codes are sealed to the first one */
  GRANTLINE_CODE_ENCRYPTION_KEY: publicKeysVariable('enc'),
  /** public: the consent service's verdict keys */
  GRANTLINE_VERDICT_VERIFY_KEYS: publicKeysVariable('sig'),
  /** private: opens the password hashes the registry seals into user events (only this service checks passwords) */
  GRANTLINE_CREDENTIALS_DECRYPTION_KEY: privateKeysVariable('enc'),
  /** this service's own CSRF key(s): 32 bytes base64url, comma-separated to rotate; shared with no other service */
  GRANTLINE_CSRF_KEY: symmetricKeysVariable(),
  /** scrypt cost N of password hashes: a stored hash below it is replaced at the next sign-in */
  PASSWORD_SCRYPT_N: passwordCostVariable,
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
