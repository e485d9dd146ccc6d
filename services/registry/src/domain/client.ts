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
    };

export type ClientCommand =
  | {
      type: 'Register';
      clientId: string;
      metadata: Metadata;
      secretDigest?: string;
      registrationTokenDigest: string;
      now: number;
    }
  | { type: 'UpdateMetadata'; metadata: Metadata }
  | { type: 'RotateSecret'; secretDigest: string }
  | { type: 'Disable' }
  | { type: 'Delete' };

export class ClientRuleViolation extends Error {
  override readonly name = 'ClientRuleViolation';
  constructor(
    readonly kind: 'exists' | 'not_found' | 'gone' | 'no_secret' | 'widening',
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
      };
    case 'ClientMetadataUpdated':
      return state.status === 'none' ? state : { ...state, metadata: event.data.metadata };
    case 'ClientSecretRotated':
      return state;
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
        },
      },
    ];
  }
  if (state.status === 'none') throw new ClientRuleViolation('not_found', 'unknown client');
  if (state.status === 'deleted') throw new ClientRuleViolation('gone', 'client was deleted');
  const clientId = state.clientId;
  switch (command.type) {
    case 'UpdateMetadata':
      // A client may narrow what it can ask for, never widen it with its own registration token.
      if (
        !isSubset(command.metadata.scopes, state.metadata.scopes) ||
        !isSubset(command.metadata.resources, state.metadata.resources)
      ) {
        throw new ClientRuleViolation('widening', 'scope and resources may only be narrowed by an update');
      }
      return [{ type: 'ClientMetadataUpdated', data: { clientId, metadata: command.metadata } }];
    case 'RotateSecret':
      if (!['client_secret_basic', 'client_secret_post'].includes(state.metadata.tokenEndpointAuthMethod)) {
        throw new ClientRuleViolation('no_secret', 'client does not authenticate with a secret');
      }
      return [{ type: 'ClientSecretRotated', data: { clientId, secretDigest: command.secretDigest } }];
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
