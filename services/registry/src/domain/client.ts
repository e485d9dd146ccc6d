import type { ClientMetadata, RegistryEvent } from '@grantline/events';
import type { z } from 'zod';

export type Metadata = z.infer<typeof ClientMetadata>;

export type ClientState =
  | { status: 'none' }
  | {
      status: 'active' | 'disabled' | 'deleted';
      clientId: string;
      metadata: Metadata;
      registrationTokenDigest: string;
      issuedAt: number;
      /** whether a secret digest is on record for the current method (a secret method's own secret) */
      hasSecret: boolean;
      /** the audiences an administrator made it a resource server for */
      servedResources: readonly string[];
    };

/** Who changes a client's metadata: the client itself (RFC 7592) may only narrow; an administrator may do anything. */
export type UpdatedBy = 'client' | 'admin';

export type ClientCommand =
  | {
      type: 'Register';
      clientId: string;
      metadata: Metadata;
      secretDigest?: string;
      registrationTokenDigest: string;
      /** the initial access token that authorized the registration */
      initialAccessTokenId?: string;
      now: number;
    }
  | {
      type: 'UpdateMetadata';
      metadata: Metadata;
      by: UpdatedBy;
      /** the digest of a fresh secret, used only if the update moves the client to a secret it lacks */
      newSecretDigest?: string;
    }
  | { type: 'RotateSecret'; secretDigest: string }
  /** an administrator's: a resource server for `resources` (introspection, the revocation stream); empty: none */
  | { type: 'SetResourceServer'; resources: readonly string[] }
  | { type: 'Disable' }
  | { type: 'Delete' };

export class ClientRuleViolation extends Error {
  override readonly name = 'ClientRuleViolation';
  constructor(
    readonly kind: 'exists' | 'not_found' | 'gone' | 'no_secret' | 'widening' | 'not_a_resource_server',
    message: string,
  ) {
    super(message);
  }
}

type ClientEvent = Extract<RegistryEvent, { data: { clientId: string } }>;

export const initialClientState = (): ClientState => ({ status: 'none' });

export const evolveClient = (state: ClientState, event: ClientEvent): ClientState => {
  switch (event.type) {
    case 'ClientRegistered':
      return {
        status: 'active',
        clientId: event.data.clientId,
        metadata: event.data.metadata,
        registrationTokenDigest: event.data.registrationTokenDigest,
        issuedAt: event.data.issuedAt,
        hasSecret: event.data.secretDigest !== undefined,
        servedResources: [],
      };
    case 'ClientMetadataUpdated':
      // leaving the secret methods drops the secret (the token service's projection forgets it too)
      return state.status === 'none'
        ? state
        : {
            ...state,
            metadata: event.data.metadata,
            hasSecret: state.hasSecret && usesSecret(event.data.metadata.tokenEndpointAuthMethod),
          };
    case 'ClientSecretRotated':
      return state.status === 'none' ? state : { ...state, hasSecret: true };
    case 'ClientResourceServerSet':
      return state.status === 'none' ? state : { ...state, servedResources: event.data.resources };
    case 'ClientDisabled':
      return state.status === 'none' ? state : { ...state, status: 'disabled' };
    case 'ClientDeleted':
      return state.status === 'none' ? state : { ...state, status: 'deleted' };
    default: {
      const exhaustive: never = event;
      return exhaustive;
    }
  }
};

const isSubset = (a: readonly string[], b: readonly string[]) => a.every((x) => b.includes(x));

export const usesSecret = (method: Metadata['tokenEndpointAuthMethod']): boolean =>
  method === 'client_secret_basic' || method === 'client_secret_post';

/**
 * What a client may not do to itself through RFC 7592 (it holds only its registration access token):
 * widen what it can ask for, add a grant type, become public, or move between secret-based and
 * key-based authentication. Moving between the two secret methods keeps the same secret.
 */
export const selfServiceViolation = (before: Metadata, after: Metadata): string | undefined => {
  if (!isSubset(after.scopes, before.scopes) || !isSubset(after.resources, before.resources))
    return 'scope and resources may only be narrowed by an update';
  // no resources means the default audience (the issuer): from a restricted list, that is wider
  if (before.resources.length > 0 && after.resources.length === 0)
    return 'resources may be narrowed, not removed: without them tokens get the default audience';
  if (!isSubset(after.grantTypes, before.grantTypes)) return 'grant_types may only be narrowed by an update';
  const from = before.tokenEndpointAuthMethod;
  const to = after.tokenEndpointAuthMethod;
  if (from !== to && !(usesSecret(from) && usesSecret(to)))
    return 'token_endpoint_auth_method may only change between client_secret_basic and client_secret_post';
  return undefined;
};

export const decideClient = (command: ClientCommand, state: ClientState): ClientEvent[] => {
  if (command.type === 'Register') {
    if (state.status !== 'none') throw new ClientRuleViolation('exists', 'client already exists');
    return [
      {
        type: 'ClientRegistered',
        data: {
          clientId: command.clientId,
          metadata: command.metadata,
          ...(command.secretDigest && { secretDigest: command.secretDigest }),
          registrationTokenDigest: command.registrationTokenDigest,
          issuedAt: command.now,
          ...(command.initialAccessTokenId && { initialAccessTokenId: command.initialAccessTokenId }),
        },
      },
    ];
  }
  if (state.status === 'none') throw new ClientRuleViolation('not_found', 'unknown client');
  if (state.status === 'deleted') throw new ClientRuleViolation('gone', 'client was deleted');
  const clientId = state.clientId;
  switch (command.type) {
    case 'UpdateMetadata': {
      const violation =
        command.by === 'client' ? selfServiceViolation(state.metadata, command.metadata) : undefined;
      if (violation) throw new ClientRuleViolation('widening', violation);
      const { metadata, by } = command;
      const updated: ClientEvent = { type: 'ClientMetadataUpdated', data: { clientId, metadata, by } };
      // a client moved onto a secret method without a secret of its own gets a new one (RFC 7592 §2.2)
      if (!usesSecret(metadata.tokenEndpointAuthMethod) || state.hasSecret) return [updated];
      if (!command.newSecretDigest) throw new ClientRuleViolation('no_secret', 'the new secret is missing');
      return [
        updated,
        { type: 'ClientSecretRotated', data: { clientId, secretDigest: command.newSecretDigest } },
      ];
    }
    case 'RotateSecret':
      if (!usesSecret(state.metadata.tokenEndpointAuthMethod)) {
        throw new ClientRuleViolation('no_secret', 'client does not authenticate with a secret');
      }
      return [{ type: 'ClientSecretRotated', data: { clientId, secretDigest: command.secretDigest } }];
    case 'SetResourceServer': {
      // a resource server proves who it is and acts for no user: an app that signs users in never is one
      const m = state.metadata;
      if (
        command.resources.length > 0 &&
        (m.tokenEndpointAuthMethod === 'none' || !m.grantTypes.every((g) => g === 'client_credentials'))
      )
        throw new ClientRuleViolation(
          'not_a_resource_server',
          'a resource server is a confidential client registered with the client_credentials grant only',
        );
      const resources = [...new Set(command.resources)];
      const same =
        resources.length === state.servedResources.length &&
        resources.every((r) => state.servedResources.includes(r));
      return same ? [] : [{ type: 'ClientResourceServerSet', data: { clientId, resources } }];
    }
    case 'Disable':
      return state.status === 'disabled' ? [] : [{ type: 'ClientDisabled', data: { clientId } }];
    case 'Delete':
      return [{ type: 'ClientDeleted', data: { clientId } }];
    default: {
      const exhaustive: never = command;
      return exhaustive;
    }
  }
};

export const clientDecider = { initialState: initialClientState, evolve: evolveClient, decide: decideClient };
