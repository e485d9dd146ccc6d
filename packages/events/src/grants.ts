import { z } from 'zod';
import { Id, Scopes } from './common.ts';
import { SealedPasswordHash } from './registry.ts';

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
 * Revocations wider than one grant (owned by the consent service, on the grants topic): what a
 * resource server must deny besides each grant's own `GrantRevoked`.
 */
export const wideRevocationEventSchemas = {
  /**
   * The admin ended everything of a subject (account deletion): its grants (each also gets its own
   * `GrantRevoked`) and every token issued to it, however issued. Stream `subject-revocation-<subject>`.
   */
  SubjectRevoked: z.strictObject({ subject: Id, reason: z.enum(['admin']) }),
  /**
   * The admin ended everything of a client (a compromised app): its grants (each also gets its own
   * `GrantRevoked`) and every token issued to it, client credentials included. Stream
   * `client-revocation-<client_id>`.
   */
  ClientRevoked: z.strictObject({ clientId: Id, reason: z.enum(['admin']) }),
} as const;

/**
 * Sign-in facts (owned by the authorization service), for auditors. A failed sign-in names the user
 * when there is one, and nothing derived from what was typed otherwise (neither the username nor the
 * password).
 */
export const sessionEventSchemas = {
  UserAuthenticated: z.strictObject({
    userId: Id,
    sessionId: Id,
    method: z.literal('password'),
    address: z.string().max(100).optional(),
  }),
  LoginFailed: z.strictObject({
    /** the user whose password was wrong or who is disabled; absent for an unknown username */
    userId: Id.optional(),
    /** @deprecated SHA-256 of the typed username, in events written before it was dropped; never written now */
    usernameDigest: z.string().max(100).optional(),
    reason: z.enum(['unknown_user', 'wrong_password', 'disabled', 'locked_out']),
    address: z.string().max(100).optional(),
  }),
  UserLoggedOut: z.strictObject({ userId: Id, sessionId: Id }),
  /**
   * A weaker hash replaced at sign-in, sealed to the authorization service's own credentials key.
   * `replacesVersion`: the version of the user's password it re-hashes (a later change wins).
   */
  UserPasswordRehashed: z.strictObject({
    userId: Id,
    sealedPasswordHash: SealedPasswordHash,
    replacesVersion: z.number().int().min(1),
  }),
} as const;
