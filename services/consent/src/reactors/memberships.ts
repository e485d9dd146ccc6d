import { type EventStore, handleCommand } from '@grantline/event-store';
import { activeGrantsWithOrganisation } from '@grantline/grant-directory';
import { onEvents } from '@grantline/message-bus';
import { grantDecider } from '../domain/grant.ts';

/** An organisation the user leaves is disconnected from each of the user's grants. */
export const disconnectOrganisationOnMembershipEnd = (schema: string, store: EventStore) =>
  onEvents(['UserRemovedFromOrganisation'], async (event, tx) => {
    const { userId, organisationId } = event.data;
    for (const grantId of await activeGrantsWithOrganisation(tx, schema, userId, organisationId))
      await handleCommand(
        store,
        `grant-${grantId}`,
        { type: 'DisconnectOrganisation', organisationId },
        grantDecider,
      );
  });
