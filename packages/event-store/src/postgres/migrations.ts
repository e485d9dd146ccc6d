import type pg from 'pg';

/**
 * Versioned SQL migrations of one service's event store schema. Append new versions; never edit an
 * applied one. `{schema}` is replaced by the service's (validated) schema name.
 */
export const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
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

export const assertSchemaName = (schema: string): string => {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema)}`);
  return schema;
};

/** Applies pending migrations under an advisory lock, so instances starting together do not race. */
export const migrate = async (pool: pg.Pool, schema: string): Promise<number[]> => {
  assertSchemaName(schema);
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`grantline.migrate.${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number }>(
      `SELECT version FROM ${schema}.schema_migrations`,
    );
    const applied = new Set(rows.map((r) => r.version));
    const done: number[] = [];
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql.replaceAll('{schema}', schema));
        await client.query(`INSERT INTO ${schema}.schema_migrations (version, name) VALUES ($1, $2)`, [
          m.version,
          m.name,
        ]);
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
