import type { ConsumedEvent } from '@grantline/message-bus';
import type pg from 'pg';
import { clientsProjection, clientsTable } from './clients.ts';
import { peopleProjection, peopleTables } from './people.ts';

export * from './clients.ts';
export * from './people.ts';

/**
 * The registry read model every service keeps (clients, users, organisations, scopes): create its
 * tables, then feed it `grantline.registry.v1` through `runtime.project`.
 */
export const directoryTables = (schema: string) => `${clientsTable(schema)}; ${peopleTables(schema)}`;

export const directoryProjection = (schema: string) => {
  const clients = clientsProjection(schema);
  const people = peopleProjection(schema);
  return async (event: ConsumedEvent, tx: pg.PoolClient) => {
    await clients(event, tx);
    await people(event, tx);
  };
};
export * from './grants.ts';
export * from './sessions.ts';
