import type { RequestHandler } from 'express';

export interface ServerUrls {
  issuer: string;
  tokenEndpoint: string;
  jwksUri: string;
  registrationEndpoint: string;
}

/**
 * RFC 8414 authorization server metadata, listing only what exists. It grows as endpoints and grant
 * types are added; `scopes_supported` is the live scope catalogue.
 */
export const metadataEndpoint =
  (urls: () => ServerUrls, scopes: () => Promise<string[]>): RequestHandler =>
  async (_req, res, next) => {
    try {
      const u = urls();
      res.set('Cache-Control', 'public, max-age=60').json({
        issuer: u.issuer,
        token_endpoint: u.tokenEndpoint,
        jwks_uri: u.jwksUri,
        registration_endpoint: u.registrationEndpoint,
        scopes_supported: await scopes(),
        response_types_supported: [],
        grant_types_supported: ['client_credentials'],
        token_endpoint_auth_methods_supported: [
          'client_secret_basic',
          'client_secret_post',
          'private_key_jwt',
        ],
        token_endpoint_auth_signing_alg_values_supported: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'],
        code_challenge_methods_supported: ['S256'],
        // RFC 8707 resource indicators; RFC 9068 access tokens are ES256-signed JWTs
        resource_indicators_supported: true,
        access_token_signing_alg_values_supported: ['ES256'],
      });
    } catch (error) {
      next(error);
    }
  };
