import { type EventStore, handleCommand } from '@grantline/event-store';
import { activeGrantsWithOrganisation } from '@grantline/grant-directory';
import { reactTo } from '@grantline/message-bus';
import type pg from 'pg';
import { grantDecider } from '../domain/grant.ts';

/** An organisation the user leaves is disconnected from each of the user's grants. */
export const disconnectOrganisationOnMembershipEnd = (pool: pg.Pool, schema: string, store: EventStore) =>
  reactTo(['UserRemovedFromOrganisation'], async (event) => {
    const { userId, organisationId } = event.data;
    for (const grantId of await activeGrantsWithOrganisation(pool, schema, userId, organisationId))
      await handleCommand(
        store,
        `grant-${grantId}`,
        { type: 'DisconnectOrganisation', organisationId },
        grantDecider,
      );
  });
