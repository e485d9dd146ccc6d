import { z } from 'zod';
import { Id, Scopes } from './common.ts';

const Organisations = z.array(Id).min(1).max(100);
const Resources = z.array(z.url()).max(20);

/**
 * Grant aggregate (stream `grant-<grant_id>`, owned by the consent service): subject x client x
 * organisations x scopes. Grant Management actions each have their event; every organisation a
 * grant gains or loses is its own fact, so a resource server can follow one organisation.
 */
export const grantEventSchemas = {
  GrantCreated: z.strictObject({
    grantId: Id,
    subject: Id,
    clientId: Id,
    organisations: Organisations,
    scopes: Scopes,
    resources: Resources.optional(),
  }),
  /** `grant_management_action=merge`: the grant now holds the union; `scopes` is the result */
  GrantMerged: z.strictObject({ grantId: Id, scopes: Scopes, organisations: Organisations }),
  /** `grant_management_action=replace`: the grant now holds exactly these */
  GrantReplaced: z.strictObject({ grantId: Id, scopes: Scopes, organisations: Organisations }),
  OrganisationConnected: z.strictObject({ grantId: Id, organisationId: Id }),
  OrganisationDisconnected: z.strictObject({ grantId: Id, organisationId: Id }),
  GrantRevoked: z.strictObject({
    grantId: Id,
    reason: z.enum(['user', 'client', 'admin', 'code_replay', 'refresh_reuse']),
  }),
} as const;

/**
 * Sign-in facts (stream `user-<user id>` or `login-<username digest>`, owned by the authorization
 * service), for auditors. A failed sign-in names the username's digest, never what was typed as a
 * password.
 */
export const sessionEventSchemas = {
  UserAuthenticated: z.strictObject({
    userId: Id,
    sessionId: Id,
    method: z.literal('password'),
    address: z.string().max(100).optional(),
  }),
  LoginFailed: z.strictObject({
    usernameDigest: z.string().max(100),
    reason: z.enum(['unknown_user', 'wrong_password', 'disabled', 'locked_out']),
    address: z.string().max(100).optional(),
  }),
  UserLoggedOut: z.strictObject({ userId: Id, sessionId: Id }),
} as const;
