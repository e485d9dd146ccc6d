import { InvalidClientMetadata, InvalidRedirectUri, parseScope } from '@grantline/oauth';
import type { Metadata } from './client.ts';

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

const absoluteUrl = (
  value: unknown,
  field: string,
  error: new (d: string) => Error = InvalidClientMetadata,
): URL => {
  if (typeof value !== 'string') throw new error(`${field} must be a string URI`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new error(`${field} must be an absolute URI`);
  }
  if (value.includes('#')) throw new error(`${field} must not have a fragment`);
  return url;
};

/** RFC 7591 §2 and RFC 9700 §2.1, §2.6: https only; http only for loopback (native clients); no fragments. */
const redirectUri = (value: unknown): string => {
  const url = absoluteUrl(value, 'redirect_uris', InvalidRedirectUri);
  if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) {
    throw new InvalidRedirectUri('redirect_uris must use https (http only for loopback native clients)');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new InvalidRedirectUri('redirect_uris must use https');
  return value as string;
};

const stringArray = (value: unknown, field: string, max: number): string[] | undefined => {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > max || !value.every((v) => typeof v === 'string')) {
    throw new InvalidClientMetadata(`${field} must be an array of at most ${max} strings`);
  }
  return value as string[];
};

const oneOf = <T extends string>(value: string, allowed: readonly T[], field: string): T => {
  if (!(allowed as readonly string[]).includes(value))
    throw new InvalidClientMetadata(`${field} ${value.slice(0, 60)} is not supported`);
  return value as T;
};

/**
 * Validates RFC 7591 client metadata (snake_case JSON) into its stored form. `resources` (RFC 8707
 * resource indicators the client may request) is a Grantline extension. Unknown fields are ignored.
 */
export const parseClientMetadata = (
  input: unknown,
  definedScopes: (names: string[]) => Promise<string[]>,
) => {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidClientMetadata('the request body must be a JSON object');
  }
  const m = input as Record<string, unknown>;
  const grantTypes = (stringArray(m.grant_types, 'grant_types', 3) ?? ['authorization_code']).map((g) =>
    oneOf(g, ['authorization_code', 'client_credentials', 'refresh_token'] as const, 'grant_type'),
  );
  if (grantTypes.length === 0) throw new InvalidClientMetadata('grant_types must not be empty');
  const usesCode = grantTypes.includes('authorization_code');
  const responseTypes = (
    stringArray(m.response_types, 'response_types', 1) ?? (usesCode ? ['code'] : [])
  ).map((r) => oneOf(r, ['code'] as const, 'response_type'));
  if (usesCode !== responseTypes.includes('code')) {
    throw new InvalidClientMetadata(
      'response_types "code" goes with grant_types "authorization_code", and only with it',
    );
  }
  if (grantTypes.includes('refresh_token') && !usesCode) {
    throw new InvalidClientMetadata('refresh_token is only issued with authorization_code');
  }
  const method = oneOf(
    typeof m.token_endpoint_auth_method === 'string' ? m.token_endpoint_auth_method : 'client_secret_basic',
    ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const,
    'token_endpoint_auth_method',
  );
  if (method === 'none' && grantTypes.includes('client_credentials')) {
    throw new InvalidClientMetadata('client_credentials requires a confidential client');
  }
  const redirectUris = (stringArray(m.redirect_uris, 'redirect_uris', 20) ?? []).map(redirectUri);
  if (usesCode && redirectUris.length === 0)
    throw new InvalidRedirectUri('redirect_uris is required for authorization_code');

  let jwks: Metadata['jwks'];
  let jwksUri: string | undefined;
  if (m.jwks !== undefined && m.jwks_uri !== undefined)
    throw new InvalidClientMetadata('jwks and jwks_uri are mutually exclusive');
  if (m.jwks !== undefined) {
    const keys = (m.jwks as { keys?: unknown })?.keys;
    if (!Array.isArray(keys) || keys.length === 0 || keys.length > 10)
      throw new InvalidClientMetadata('jwks must hold 1 to 10 keys');
    for (const k of keys) {
      if (typeof k !== 'object' || k === null || typeof (k as { kty?: unknown }).kty !== 'string') {
        throw new InvalidClientMetadata('jwks keys must be JWKs');
      }
      if ('d' in k) throw new InvalidClientMetadata('jwks must hold public keys only');
    }
    jwks = { keys: keys as NonNullable<Metadata['jwks']>['keys'] };
  }
  if (m.jwks_uri !== undefined) {
    const url = absoluteUrl(m.jwks_uri, 'jwks_uri');
    if (url.protocol !== 'https:' && !LOOPBACK.has(url.hostname))
      throw new InvalidClientMetadata('jwks_uri must use https');
    jwksUri = m.jwks_uri as string;
  }
  if (method === 'private_key_jwt' && !jwks && !jwksUri) {
    throw new InvalidClientMetadata('private_key_jwt requires jwks or jwks_uri');
  }

  const scopes = parseScope(
    typeof m.scope === 'string' ? m.scope : m.scope === undefined ? undefined : '\u0000',
  );
  if (!scopes) throw new InvalidClientMetadata('scope must be a space-delimited list of scope tokens');
  const resources = (stringArray(m.resources, 'resources', 20) ?? []).map(
    (r) => absoluteUrl(r, 'resources').href,
  );
  const clientName = m.client_name === undefined ? undefined : String(m.client_name);
  if (clientName !== undefined && (clientName.length === 0 || clientName.length > 200)) {
    throw new InvalidClientMetadata('client_name must be 1 to 200 characters');
  }
  let logoUri: string | undefined;
  if (m.logo_uri !== undefined) {
    if (absoluteUrl(m.logo_uri, 'logo_uri').protocol !== 'https:')
      throw new InvalidClientMetadata('logo_uri must use https');
    logoUri = m.logo_uri as string;
  }
  const contacts = stringArray(m.contacts, 'contacts', 10);

  const metadata: Metadata = {
    redirectUris,
    grantTypes,
    responseTypes,
    tokenEndpointAuthMethod: method,
    scopes,
    resources,
    ...(clientName !== undefined && { clientName }),
    ...(jwks && { jwks }),
    ...(jwksUri && { jwksUri }),
    ...(logoUri && { logoUri }),
    ...(contacts && { contacts }),
  };
  return {
    metadata,
    /** scopes must be in the catalogue (checked against the store) */
    check: async () => {
      const known = await definedScopes(scopes);
      const unknown = scopes.filter((s) => !known.includes(s));
      if (unknown.length > 0) throw new InvalidClientMetadata(`scope not defined: ${unknown.join(' ')}`);
      return metadata;
    },
  };
};

/** The stored form rendered back as RFC 7591 metadata. */
export const renderClientMetadata = (metadata: Metadata): Record<string, unknown> => ({
  redirect_uris: metadata.redirectUris,
  grant_types: metadata.grantTypes,
  response_types: metadata.responseTypes,
  token_endpoint_auth_method: metadata.tokenEndpointAuthMethod,
  scope: metadata.scopes.join(' '),
  resources: metadata.resources,
  ...(metadata.clientName !== undefined && { client_name: metadata.clientName }),
  ...(metadata.jwks && { jwks: metadata.jwks }),
  ...(metadata.jwksUri && { jwks_uri: metadata.jwksUri }),
  ...(metadata.logoUri && { logo_uri: metadata.logoUri }),
  ...(metadata.contacts && { contacts: metadata.contacts }),
});
