import { type PrivateKeyEntry, publicJwks } from '@grantline/keys';
import type { RequestHandler } from 'express';

/** GET /oauth2/introspection/jwks: the keys that sign RFC 9701 responses (every configured one, newest first). */
export const introspectionJwksEndpoint =
  (keys: readonly PrivateKeyEntry[]): RequestHandler =>
  (_req, res) => {
    res
      .set('Cache-Control', 'public, max-age=300')
      .type('application/jwk-set+json')
      .send(JSON.stringify(publicJwks(keys)));
  };
