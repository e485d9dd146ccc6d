import type { ClientRecord } from '@grantline/oauth';
import type { TokenInfo } from './inspector.ts';

/**
 * Who may see a token (security checklist item 36): the client it was issued to, and a resource
 * server an administrator granted one of the access token's audiences. A refresh token
 * is only ever its own client's business. Public clients may not introspect at all.
 */
export const maySee = (caller: ClientRecord, info: TokenInfo): boolean => {
  if (info.client_id === caller.clientId) return true;
  if (info.token_type !== 'Bearer' || !isResourceServer(caller)) return false;
  const audiences = info.aud === undefined ? [] : Array.isArray(info.aud) ? info.aud : [info.aud];
  return audiences.some((a) => caller.servedResources?.includes(a));
};

/** A client that may use the introspection endpoint: a confidential one (public clients prove nothing). */
export const isConfidential = (client: ClientRecord): boolean => client.tokenEndpointAuthMethod !== 'none';

/**
 * A resource server: a confidential client that acts for no user (the `client_credentials` grant
 * only) and that an administrator granted the audiences it serves (the registry's admin API). The
 * `resources` a client registers itself only name what it may ask tokens for: anyone may register
 * those, so they make nobody a resource server. An app that signs users in is never one.
 */
export const isResourceServer = (client: ClientRecord): boolean =>
  isConfidential(client) &&
  (client.servedResources?.length ?? 0) > 0 &&
  client.grantTypes.length > 0 &&
  client.grantTypes.every((g) => g === 'client_credentials');
