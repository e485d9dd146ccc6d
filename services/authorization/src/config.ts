import { baseConfigSchema } from '@grantline/service-kit';
import { z } from 'zod';

export const authorizationConfigSchema = baseConfigSchema.extend({
  /** the issuer: this service's public origin, where clients discover the server */
  GRANTLINE_ISSUER: z.url().optional(),
  /** public URLs of the other services' endpoints; default: the issuer's origin (gateway mode) */
  GRANTLINE_TOKEN_ENDPOINT: z.url().optional(),
  GRANTLINE_JWKS_URI: z.url().optional(),
  GRANTLINE_REGISTRATION_ENDPOINT: z.url().optional(),
});

export type AuthorizationConfig = z.infer<typeof authorizationConfigSchema>;
