export * from './command-handler.ts';
export * from './errors.ts';
export * from './group-commit.ts';
export { pglitePool } from './pglite/pool.ts';
export * from './port.ts';
export {
  assertSchemaName,
  MIGRATIONS,
  type Migration,
  migrate,
  migrateReadModel,
  migrateReadModels,
  type ReadModelMigrations,
} from './postgres/migrations.ts';
export { prepared } from './postgres/prepared.ts';
export {
  EVENT_COLUMNS,
  type EventRow,
  PostgresEventStore,
  type PostgresEventStoreOptions,
  type Queryable,
  toRecordedEvent,
} from './postgres/store.ts';
export * from './relay.ts';
export * from './retry.ts';
