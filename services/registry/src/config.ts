import { baseConfigSchema } from '@grantline/service-kit';
import { z } from 'zod';

export const registryConfigSchema = baseConfigSchema.extend({
  /** bearer token of the admin API, also the RFC 7591 initial access token */
  GRANTLINE_ADMIN_TOKEN: z.string().min(32, 'at least 32 characters'),
  /** public base URL of this service, for `registration_client_uri` (default: its own address) */
  PUBLIC_URL: z.url().optional(),
  /**
   * how long a registry write waits, before answering, for every service that projects the registry
   * to apply it (a timeout is logged and the write answered anyway)
   */
  REGISTRY_WRITE_VISIBILITY_TIMEOUT_MS: z.coerce.number().int().min(0).max(60_000).default(5_000),
});

export type RegistryConfig = z.infer<typeof registryConfigSchema>;
