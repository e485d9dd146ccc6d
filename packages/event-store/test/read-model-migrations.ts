import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { migrateReadModel, migrateReadModels, type ReadModelMigrations } from '../src/postgres/migrations.ts';

const notes: ReadModelMigrations = {
  model: 'notes',
  migrations: [
    {
      version: 1,
      name: 'notes',
      sql: 'CREATE TABLE IF NOT EXISTS {schema}.notes (id text PRIMARY KEY, body text NOT NULL)',
    },
  ],
};

const notesV2: ReadModelMigrations = {
  model: 'notes',
  migrations: [
    ...notes.migrations,
    { version: 2, name: 'note authors', sql: 'ALTER TABLE {schema}.notes ADD COLUMN author text' },
  ],
};

const schemaName = () => `rm_${randomBytes(4).toString('hex')}`;

const ledger = async (pool: pg.Pool, schema: string) =>
  (
    await pool.query<{ model: string; version: number }>(
      `SELECT model, version FROM ${schema}.read_model_migrations ORDER BY model, version`,
    )
  ).rows.map((r) => `${r.model}@${r.version}`);

const columns = async (pool: pg.Pool, schema: string, table: string) =>
  (
    await pool.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2
       ORDER BY ordinal_position`,
      [schema, table],
    )
  ).rows.map((r) => r.column_name);

/** Read-model migrations, per (schema, model): the same suite on every Postgres (a server, PGlite). */
export const readModelMigrationsContract = (name: string, pool: () => pg.Pool) =>
  describe(`read model migrations (${name})`, () => {
    it('applies each version once per schema and model, recording it in read_model_migrations', async () => {
      const [a, b] = [schemaName(), schemaName()];
      expect(await migrateReadModel(pool(), a, notes)).toEqual([1]);
      expect(await migrateReadModel(pool(), a, notes)).toEqual([]);
      expect(await migrateReadModel(pool(), a, notesV2)).toEqual([2]);
      expect(await migrateReadModel(pool(), b, notesV2)).toEqual([1, 2]);
      expect(await ledger(pool(), a)).toEqual(['notes@1', 'notes@2']);
      expect(await columns(pool(), a, 'notes')).toEqual(['id', 'body', 'author']);
    });

    it('keeps one ledger per model, apart from the event store', async () => {
      const schema = schemaName();
      const tags: ReadModelMigrations = {
        model: 'tags',
        migrations: [{ version: 1, name: 'tags', sql: 'CREATE TABLE {schema}.tags (name text PRIMARY KEY)' }],
      };
      await migrateReadModels(pool(), schema, [notes, tags]);
      expect(await ledger(pool(), schema)).toEqual(['notes@1', 'tags@1']);
      await pool().query(`INSERT INTO ${schema}.tags VALUES ('x')`);
    });

    it('accepts tables created before read models had migrations, then applies later versions', async () => {
      const schema = schemaName();
      await pool().query(`CREATE SCHEMA ${schema}`);
      await pool().query(`CREATE TABLE ${schema}.notes (id text PRIMARY KEY, body text NOT NULL)`);
      await pool().query(`INSERT INTO ${schema}.notes VALUES ('kept', 'as it was')`);
      expect(await migrateReadModel(pool(), schema, notesV2)).toEqual([1, 2]);
      const { rows } = await pool().query(`SELECT id, body, author FROM ${schema}.notes`);
      expect(rows).toEqual([{ id: 'kept', body: 'as it was', author: null }]);
    });

    it('rolls a failing version back and records nothing of it', async () => {
      const schema = schemaName();
      const broken: ReadModelMigrations = {
        model: 'notes',
        migrations: [
          ...notes.migrations,
          {
            version: 2,
            name: 'broken',
            sql: 'ALTER TABLE {schema}.notes ADD COLUMN half text; SELECT no_such_function()',
          },
        ],
      };
      await expect(migrateReadModel(pool(), schema, broken)).rejects.toThrow(/no_such_function/);
      expect(await ledger(pool(), schema)).toEqual(['notes@1']);
      expect(await columns(pool(), schema, 'notes')).toEqual(['id', 'body']);
      expect(await migrateReadModel(pool(), schema, notesV2)).toEqual([2]);
    });

    it('refuses versions out of order and names that are not plain, before running anything', async () => {
      const schema = schemaName();
      const skipped = { model: 'notes', migrations: [{ ...notes.migrations[0]!, version: 2 }] };
      await expect(migrateReadModel(pool(), schema, skipped)).rejects.toThrow(/version 2, expected 1/);
      await expect(migrateReadModel(pool(), schema, { ...notes, model: 'x; DROP' })).rejects.toThrow(
        /invalid read model name/,
      );
      await expect(migrateReadModel(pool(), 'x; DROP', notes)).rejects.toThrow(/invalid schema name/);
      const { rowCount } = await pool().query(
        'SELECT 1 FROM information_schema.schemata WHERE schema_name = $1',
        [schema],
      );
      expect(rowCount).toBe(0);
    });
  });
