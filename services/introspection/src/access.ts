import type { ClientRecord } from '@grantline/oauth';
import type { TokenInfo } from './inspector.ts';

/**
 * Who may see a token (security checklist item 36): the client it was issued to, and a resource
 * server whose registered `resources` include one of the access token's audiences. A refresh token
 * is only ever its own client's business. Public clients may not introspect at all.
 */
export const maySee = (caller: ClientRecord, info: TokenInfo): boolean => {
  if (info.client_id === caller.clientId) return true;
  if (info.token_type !== 'Bearer' || !isResourceServer(caller)) return false;
  const audiences = info.aud === undefined ? [] : Array.isArray(info.aud) ? info.aud : [info.aud];
  return audiences.some((a) => caller.resources.includes(a));
};

/** A client that may use the introspection endpoint: a confidential one (public clients prove nothing). */
export const isConfidential = (client: ClientRecord): boolean => client.tokenEndpointAuthMethod !== 'none';

/**
 * A resource server: a confidential client that acts for no user (registered with the
 * `client_credentials` grant only) and lists the audiences it serves as its `resources` (RFC 8707).
 * An app that signs users in is never one, whatever resources it may ask tokens for.
 */
export const isResourceServer = (client: ClientRecord): boolean =>
  isConfidential(client) &&
  client.resources.length > 0 &&
  client.grantTypes.length > 0 &&
  client.grantTypes.every((g) => g === 'client_credentials');
