/**
 * Revocation facts a resource server checks before honouring a token. Keys name what was revoked:
 * `jti:<id>`, `grant:<grant_id>`, `grant-org:<grant_id>:<organisation_id>`, `sub:<subject>`, `client:<client_id>`.
 */
export interface Revocation {
  key: string;
  /** how long the fact must be remembered: at least the longest lifetime of a token it denies */
  ttlSeconds: number;
}

/** The revocation cache port. One contract test suite runs against every adapter. */
export interface RevocationCache {
  revoke(revocations: readonly Revocation[]): Promise<void>;
  /** true when any of the keys is revoked */
  isRevoked(keys: readonly string[]): Promise<boolean>;
  /** throws when the cache cannot answer (readiness, and the SDK's fail-closed policy) */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const revocationKeys = {
  token: (jti: string) => `jti:${jti}`,
  grant: (grantId: string) => `grant:${grantId}`,
  grantOrganisation: (grantId: string, organisationId: string) => `grant-org:${grantId}:${organisationId}`,
  subject: (subject: string) => `sub:${subject}`,
  client: (clientId: string) => `client:${clientId}`,
} as const;
