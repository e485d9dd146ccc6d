import type { ReadModelMigrations } from '@grantline/event-store';
import { combine } from '@grantline/message-bus';
import { clientsProjection, clientsTables } from './clients.ts';
import { peopleProjection, peopleTables } from './people.ts';

export * from './client-directory.ts';
export * from './clients.ts';
export * from './people.ts';
export * from './user-directory.ts';

/**
 * The registry as the other services read it (clients, users, organisations, scopes), from
 * `grantline.registry.v1`: migrate its tables (`migrateReadModels`), then feed it through
 * `runtime.project`.
 */
export const registryDirectoryTables: readonly ReadModelMigrations[] = [clientsTables, peopleTables];

export const registryDirectoryProjection = (schema: string) =>
  combine(clientsProjection(schema), peopleProjection(schema));
