import type { RegistryEvent } from '@grantline/events';

/**
 * RFC 7591 §3 initial access tokens: the administrator's list of bearer tokens that may register
 * clients, each revocable on its own. One aggregate (stream `initial-access-tokens`): the list is
 * short and read whole, to check a registration and to show it to an administrator.
 */
export interface InitialAccessToken {
  tokenId: string;
  tokenDigest: string;
  description?: string;
  issuedAt: number;
  revoked: boolean;
}

export type InitialAccessTokensState = readonly InitialAccessToken[];

export type InitialAccessTokenCommand =
  | { type: 'Issue'; tokenId: string; tokenDigest: string; description?: string; now: number }
  | { type: 'Revoke'; tokenId: string };

type Event = Extract<RegistryEvent, { type: 'InitialAccessTokenIssued' | 'InitialAccessTokenRevoked' }>;

export class InitialAccessTokenNotFound extends Error {
  override readonly name = 'InitialAccessTokenNotFound';
}

export const initialAccessTokensStream = 'initial-access-tokens';

export const initialAccessTokensDecider = {
  initialState: (): InitialAccessTokensState => [],
  evolve: (state: InitialAccessTokensState, event: Event): InitialAccessTokensState => {
    switch (event.type) {
      case 'InitialAccessTokenIssued':
        return [...state, { ...event.data, revoked: false }];
      case 'InitialAccessTokenRevoked':
        return state.map((t) => (t.tokenId === event.data.tokenId ? { ...t, revoked: true } : t));
      default: {
        const exhaustive: never = event;
        return exhaustive;
      }
    }
  },
  decide: (command: InitialAccessTokenCommand, state: InitialAccessTokensState): Event[] => {
    switch (command.type) {
      case 'Issue': {
        const { tokenId, tokenDigest, description, now } = command;
        return [
          {
            type: 'InitialAccessTokenIssued',
            data: { tokenId, tokenDigest, ...(description && { description }), issuedAt: now },
          },
        ];
      }
      case 'Revoke': {
        const token = state.find((t) => t.tokenId === command.tokenId);
        if (!token) throw new InitialAccessTokenNotFound('unknown initial access token');
        return token.revoked ? [] : [{ type: 'InitialAccessTokenRevoked', data: { tokenId: token.tokenId } }];
      }
      default: {
        const exhaustive: never = command;
        return exhaustive;
      }
    }
  },
};
