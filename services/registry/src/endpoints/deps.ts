import type { Clock } from '@grantline/clock';
import type { EventStore } from '@grantline/event-store';
import type { Response } from 'express';

export interface RegistryDeps {
  store: EventStore;
  adminTokenDigest: string;
  publicUrl: string;
  /** registration and issue times */
  clock: Clock;
  /** a password's scrypt hash, sealed to the authorization service (the only one that checks passwords) */
  sealPassword: (password: string) => Promise<string>;
  /** which of these scopes the catalogue defines */
  definedScopes: (names: string[]) => Promise<string[]>;
}

/** RFC 6750 §3: a missing or wrong bearer token. */
export const invalidToken = (res: Response, description: string) => {
  res
    .status(401)
    .set('WWW-Authenticate', `Bearer error="invalid_token", error_description="${description}"`)
    .set('Cache-Control', 'no-store')
    .json({ error: 'invalid_token', error_description: description });
};
