import { type EventStore, handleCommand } from '@grantline/event-store';
import { reactTo } from '@grantline/message-bus';
import { grantDecider } from '../domain/grant.ts';

/** RFC 9700 §4.14.2: a refresh token used twice means it leaked; the whole grant ends. */
export const revokeGrantOnRefreshReuse = (store: EventStore) =>
  reactTo(['RefreshTokenReuseDetected'], (event) =>
    handleCommand(
      store,
      `grant-${event.data.grantId}`,
      { type: 'Revoke', reason: 'refresh_reuse' },
      grantDecider,
    ),
  );
