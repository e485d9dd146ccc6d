import type { KeyManager } from '@grantline/keys';
import type { RequestHandler } from 'express';

/** GET /oauth2/jwks: upcoming, current and recently retired public keys. Briefly cacheable. */
export const jwksEndpoint =
  (keys: KeyManager): RequestHandler =>
  (_req, res) => {
    res
      .set('Cache-Control', 'public, max-age=60')
      .type('application/jwk-set+json')
      .send(JSON.stringify(keys.jwks()));
  };
