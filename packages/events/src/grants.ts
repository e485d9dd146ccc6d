import { z } from 'zod';
import { Id, Scopes } from './common.ts';

/** Grant aggregate: subject x client x organisations x scopes (stream `grant-<grant_id>`). */
export const grantEventSchemas = {
  GrantCreated: z.strictObject({
    grantId: Id,
    subject: Id,
    clientId: Id,
    organisations: z.array(Id).max(100),
    scopes: Scopes,
    resources: z.array(z.url()).max(20).optional(),
  }),
  GrantScopesChanged: z.strictObject({ grantId: Id, scopes: Scopes }),
  OrganisationConnected: z.strictObject({ grantId: Id, organisationId: Id }),
  OrganisationDisconnected: z.strictObject({ grantId: Id, organisationId: Id }),
  GrantRevoked: z.strictObject({
    grantId: Id,
    reason: z.enum(['user', 'client', 'admin', 'code_replay', 'refresh_reuse']),
  }),
} as const;
