import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';

export interface ServerUrls {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  revocationEndpoint: string;
  jwksUri: string;
  registrationEndpoint: string;
  grantManagementEndpoint: string;
  introspectionEndpoint: string;
}

/**
 * RFC 8414 authorization server metadata, listing only what exists; `scopes_supported` is the live
 * scope catalogue. So that a new scope is visible at once, clients may store the document but must
 * revalidate it (`no-cache`); an unchanged one costs them a 304 (ETag).
 */
export const metadataEndpoint =
  (u: ServerUrls, scopes: () => Promise<string[]>): RequestHandler =>
  async (req, res, next) => {
    try {
      const body = JSON.stringify({
        issuer: u.issuer,
        authorization_endpoint: u.authorizationEndpoint,
        token_endpoint: u.tokenEndpoint,
        jwks_uri: u.jwksUri,
        // RFC 7009 (RFC 8414 §2): the client authenticates as at the token endpoint
        revocation_endpoint: u.revocationEndpoint,
        revocation_endpoint_auth_methods_supported: [
          'client_secret_basic',
          'client_secret_post',
          'private_key_jwt',
          'none',
        ],
        revocation_endpoint_auth_signing_alg_values_supported: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'],
        registration_endpoint: u.registrationEndpoint,
        scopes_supported: await scopes(),
        response_types_supported: ['code'],
        response_modes_supported: ['query'],
        grant_types_supported: ['authorization_code', 'client_credentials', 'refresh_token'],
        token_endpoint_auth_methods_supported: [
          'client_secret_basic',
          'client_secret_post',
          'private_key_jwt',
          'none',
        ],
        token_endpoint_auth_signing_alg_values_supported: ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'],
        // RFC 7662 (public clients may not introspect); RFC 9701 signed responses
        introspection_endpoint: u.introspectionEndpoint,
        introspection_endpoint_auth_methods_supported: [
          'client_secret_basic',
          'client_secret_post',
          'private_key_jwt',
        ],
        introspection_endpoint_auth_signing_alg_values_supported: [
          'ES256',
          'ES384',
          'RS256',
          'PS256',
          'EdDSA',
        ],
        introspection_signing_alg_values_supported: ['ES256'],
        code_challenge_methods_supported: ['S256'],
        prompt_values_supported: ['none', 'login', 'consent'],
        // RFC 9207
        authorization_response_iss_parameter_supported: true,
        // RFC 8707 resource indicators; RFC 9068 access tokens are ES256-signed JWTs
        resource_indicators_supported: true,
        access_token_signing_alg_values_supported: ['ES256'],
        // Grant Management for OAuth 2.0 (FAPI WG draft)
        grant_management_actions_supported: ['create', 'merge', 'replace'],
        grant_management_action_required: false,
        grant_management_endpoint: u.grantManagementEndpoint,
      });
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
      res.set({ 'Cache-Control': 'public, no-cache', ETag: etag });
      if (req.get('if-none-match') === etag) return void res.status(304).end();
      res.type('application/json').send(body);
    } catch (error) {
      next(error);
    }
  };
