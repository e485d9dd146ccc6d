import { z } from 'zod';
import { Id, Scopes } from './common.ts';

/** Digest of a client secret or registration token: HMAC-SHA-256, base64url. Never the secret itself. */
const Digest = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'base64url SHA-256 digest');

const PublicJwk = z.looseObject({ kty: z.string(), kid: z.string().optional() }).refine((k) => !('d' in k), {
  message: 'private key material is not allowed',
});

/** A scrypt hash in its stored form; only in events written before hashes were sealed. */
const LegacyPasswordHash = z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);

/**
 * A password hash sealed to the authorization service's credentials key (JWE compact, ECDH-ES+A256KW,
 * A256GCM): the only service that checks passwords is the only one that can read it.
 */
export const SealedPasswordHash = z
  .string()
  .max(2_000)
  .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a compact JWE');

/** Client metadata as registered (RFC 7591 §2), in its stored form. */
export const ClientMetadata = z.strictObject({
  clientName: z.string().max(200).optional(),
  redirectUris: z.array(z.url()).max(20),
  grantTypes: z.array(z.enum(['authorization_code', 'client_credentials', 'refresh_token'])).min(1),
  responseTypes: z.array(z.enum(['code'])),
  tokenEndpointAuthMethod: z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']),
  scopes: Scopes,
  /** RFC 8707 resource indicators this client may ask tokens for (the audiences) */
  resources: z.array(z.url()).max(20),
  jwks: z.strictObject({ keys: z.array(PublicJwk).max(10) }).optional(),
  jwksUri: z.url().optional(),
  logoUri: z.url().optional(),
  contacts: z.array(z.string().max(200)).max(10).optional(),
});

export type ClientMetadataRecord = z.infer<typeof ClientMetadata>;

/** Registry aggregates: Client (`client-<id>`), User (`user-<id>`), Organisation (`org-<id>`), Scope. */
export const registryEventSchemas = {
  ClientRegistered: z.strictObject({
    clientId: Id,
    metadata: ClientMetadata,
    secretDigest: Digest.optional(),
    registrationTokenDigest: Digest,
    issuedAt: z.number().int(),
    /** the RFC 7591 initial access token it was registered with (absent in events older than this field) */
    initialAccessTokenId: Id.optional(),
  }),
  ClientMetadataUpdated: z.strictObject({
    clientId: Id,
    metadata: ClientMetadata,
    /** who changed it: the client through RFC 7592, or an administrator (absent in events older than this field: the client) */
    by: z.enum(['client', 'admin']).optional(),
  }),
  ClientSecretRotated: z.strictObject({ clientId: Id, secretDigest: Digest }),
  ClientDisabled: z.strictObject({ clientId: Id }),
  ClientDeleted: z.strictObject({ clientId: Id }),
  /**
   * An administrator made the client a resource server for these audiences (or, empty, no longer
   * one): it may introspect their access tokens and read the revocation stream. Never set through
   * RFC 7591/7592: a client cannot declare itself one.
   */
  ClientResourceServerSet: z.strictObject({ clientId: Id, resources: z.array(z.url()).max(20) }),
  /** an RFC 7591 initial access token, issued by an administrator (stream `initial-access-tokens`) */
  InitialAccessTokenIssued: z.strictObject({
    tokenId: Id,
    tokenDigest: Digest,
    /** what it is for, as the administrator put it */
    description: z.string().max(200).optional(),
    issuedAt: z.number().int(),
  }),
  /** revoked: registration with it is refused from now on (clients it registered stay) */
  InitialAccessTokenRevoked: z.strictObject({ tokenId: Id }),
  OrganisationCreated: z.strictObject({ organisationId: Id, name: z.string().min(1).max(200) }),
  /** claims a username for a user id (stream `username-<name>`), so usernames stay unique */
  UsernameClaimed: z.strictObject({ username: z.string().min(1).max(100), userId: Id }),
  UserCreated: z.strictObject({
    userId: Id,
    username: z.string().min(1).max(100),
    /** the scrypt hash (`scrypt$N$r$p$salt$hash`), sealed: only the authorization service opens it */
    sealedPasswordHash: SealedPasswordHash.optional(),
    /** @deprecated the hash in clear, in events written before hashes were sealed; never written now */
    passwordHash: LegacyPasswordHash.optional(),
    organisations: z.array(Id).max(100),
  }),
  UserAddedToOrganisation: z.strictObject({ userId: Id, organisationId: Id }),
  UserRemovedFromOrganisation: z.strictObject({ userId: Id, organisationId: Id }),
  UserDisabled: z.strictObject({ userId: Id }),
  /** a new password: every refresh token issued to the user before this dies */
  UserPasswordChanged: z.strictObject({
    userId: Id,
    sealedPasswordHash: SealedPasswordHash.optional(),
    /** @deprecated the hash in clear, in events written before hashes were sealed; never written now */
    passwordHash: LegacyPasswordHash.optional(),
  }),
  ScopeDefined: z.strictObject({
    name: z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/),
    description: z.string().min(1).max(500),
  }),
} as const;
