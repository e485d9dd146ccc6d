import type pg from 'pg';

/**
 * One versioned SQL step. Append new versions; never edit an applied one. `{schema}` is replaced by
 * the service's (validated) schema name.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * A read model's tables: its migrations, recorded per (schema, model) in
 * `<schema>.read_model_migrations`, so each read model evolves on its own in every schema that keeps
 * it. A model whose tables were created before it had migrations starts with a version 1 that
 * accepts them as they are (`CREATE TABLE IF NOT EXISTS` of the same shape).
 */
export interface ReadModelMigrations {
  /** the read model's name, e.g. `grants`: its key in the ledger */
  readonly model: string;
  readonly migrations: readonly Migration[];
}

/** The event store's own migrations (events, relay checkpoints, processed events): `schema_migrations`. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'events, relay checkpoints, processed events',
    sql: `
      CREATE TABLE {schema}.events (
        position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        -- the writing transaction: the relay publishes in (transaction_id, position) order below the
        -- oldest running transaction, so a late commit is never skipped
        transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
        event_id        uuid NOT NULL UNIQUE,
        stream_id       text NOT NULL,
        stream_version  integer NOT NULL CHECK (stream_version > 0),
        type            text NOT NULL,
        data            jsonb NOT NULL,
        metadata        jsonb NOT NULL DEFAULT '{}',
        source          text NOT NULL,
        recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (stream_id, stream_version)
      );
      CREATE INDEX events_relay_order ON {schema}.events (transaction_id, position);

      CREATE TABLE {schema}.relay_checkpoints (
        relay           text PRIMARY KEY,
        transaction_id  xid8 NOT NULL,
        position        bigint NOT NULL,
        updated_at      timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE {schema}.processed_events (
        consumer      text NOT NULL,
        event_id      uuid NOT NULL,
        processed_at  timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
      );

      -- wakes the relay on commit (NOTIFY is delivered only when the transaction commits)
      CREATE FUNCTION {schema}.notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{schema}_events', ''); RETURN NULL; END $$;
      CREATE TRIGGER events_notify AFTER INSERT ON {schema}.events
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_events();
    `,
  },
  {
    version: 2,
    name: 'wake the relay from the application, not a trigger',
    // NOTIFY in the writing transaction takes a cluster-wide lock held through the commit's WAL flush,
    // which serialised every commit under load. The store now notifies after commit, coalesced.
    sql: `
      DROP TRIGGER events_notify ON {schema}.events;
      DROP FUNCTION {schema}.notify_events();
    `,
  },
];

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,40}$/;
const MODEL_NAME = /^[a-z][a-z0-9_-]{0,60}$/;

export const assertSchemaName = (schema: string): string => {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema)}`);
  return schema;
};

/** Where a run records what it applied: the event store's table, or one read model's rows. */
interface Ledger {
  readonly create: string;
  readonly applied: string;
  readonly record: string;
  /** the ledger's key after `$1` (version) and `$2` (name) */
  readonly key: readonly string[];
}

const eventStoreLedger = (schema: string): Ledger => ({
  create: `CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
  applied: `SELECT version FROM ${schema}.schema_migrations`,
  record: `INSERT INTO ${schema}.schema_migrations (version, name) VALUES ($1, $2)`,
  key: [],
});

const readModelLedger = (schema: string, model: string): Ledger => ({
  create: `CREATE TABLE IF NOT EXISTS ${schema}.read_model_migrations (
    model text NOT NULL, version integer NOT NULL, name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (model, version))`,
  applied: `SELECT version FROM ${schema}.read_model_migrations WHERE model = $1`,
  record: `INSERT INTO ${schema}.read_model_migrations (version, name, model) VALUES ($1, $2, $3)`,
  key: [model],
});

/** Versions must count up from 1 without gaps: a typo or a reordering fails before anything runs. */
const assertVersions = (what: string, migrations: readonly Migration[]): void => {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new Error(
        `${what}: migration ${JSON.stringify(m.name)} is version ${m.version}, expected ${i + 1}`,
      );
  });
};

/**
 * Applies the ledger's pending migrations, each in its own transaction, under the schema's advisory
 * lock: instances starting together do not race, and no two runs on one schema interleave.
 */
const run = async (
  pool: pg.Pool,
  schema: string,
  ledger: Ledger,
  migrations: readonly Migration[],
): Promise<number[]> => {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`grantline.migrate.${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(ledger.create);
    const { rows } = await client.query<{ version: number }>(ledger.applied, [...ledger.key]);
    const applied = new Set(rows.map((r) => r.version));
    const done: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql.replaceAll('{schema}', schema));
        await client.query(ledger.record, [m.version, m.name, ...ledger.key]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
      done.push(m.version);
    }
    return done;
  } finally {
    await client
      .query('SELECT pg_advisory_unlock(hashtext($1))', [`grantline.migrate.${schema}`])
      .catch(() => {});
    client.release();
  }
};

/** Brings a service's event store schema up to date; returns the versions it applied. */
export const migrate = async (pool: pg.Pool, schema: string): Promise<number[]> => {
  assertSchemaName(schema);
  assertVersions('event store', MIGRATIONS);
  return run(pool, schema, eventStoreLedger(schema), MIGRATIONS);
};

/** Brings one read model's tables in `schema` up to date; returns the versions it applied. */
export const migrateReadModel = async (
  pool: pg.Pool,
  schema: string,
  readModel: ReadModelMigrations,
): Promise<number[]> => {
  assertSchemaName(schema);
  if (!MODEL_NAME.test(readModel.model))
    throw new Error(`invalid read model name ${JSON.stringify(readModel.model)}`);
  assertVersions(`read model ${readModel.model}`, readModel.migrations);
  return run(pool, schema, readModelLedger(schema, readModel.model), readModel.migrations);
};

/** Read models in the order given (one may carry data over from another's older tables). */
export const migrateReadModels = async (
  pool: pg.Pool,
  schema: string,
  readModels: readonly ReadModelMigrations[],
): Promise<void> => {
  for (const readModel of readModels) await migrateReadModel(pool, schema, readModel);
};
