import { publicKeysVariable } from '@grantline/keys';
import { passwordCostVariable } from '@grantline/oauth';
import { baseConfigSchema } from '@grantline/service-kit';
import { z } from 'zod';

export const registryConfigSchema = baseConfigSchema.extend({
  /** bearer token of the admin API, also the RFC 7591 initial access token */
  GRANTLINE_ADMIN_TOKEN: z.string().min(32, 'at least 32 characters'),
  /** the issuer: the public origin of the authorization server */
  GRANTLINE_ISSUER: z.url(),
  /** public base URL of this service, for `registration_client_uri` (default: the issuer, one origin) */
  PUBLIC_URL: z.url().optional(),
  /**
   * how long a registry write waits, before answering, for every service that projects the registry
   * to apply it (a timeout is logged and the write answered anyway)
   */
  REGISTRY_WRITE_VISIBILITY_TIMEOUT_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
  /** public: the authorization service's credentials key; password hashes in user events are sealed to the first one */
  GRANTLINE_CREDENTIALS_ENCRYPTION_KEY: publicKeysVariable('enc'),
  /** scrypt cost N of new password hashes */
  PASSWORD_SCRYPT_N: passwordCostVariable,
});

export type RegistryConfig = z.infer<typeof registryConfigSchema>;
