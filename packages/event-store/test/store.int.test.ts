import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ConcurrencyError } from '../src/errors.ts';
import { GroupCommit } from '../src/group-commit.ts';
import { MIGRATIONS, migrate, migrateReadModel } from '../src/postgres/migrations.ts';
import { PostgresEventStore } from '../src/postgres/store.ts';
import { eventStoreContract, grantCreated, orgConnected } from './contract.ts';
import { readModelMigrationsContract } from './read-model-migrations.ts';

let db: TestDatabase;
let store: PostgresEventStore;

beforeAll(async () => {
  db = await createTestDatabase(inject('infra'), 20);
  await migrate(db.pool, 'consent');
  store = new PostgresEventStore({ pool: db.pool, schema: 'consent', source: '/grantline/consent' });
});
afterAll(() => db?.drop());

eventStoreContract('postgres', () => store);
readModelMigrationsContract('postgres', () => db.pool);

describe('Postgres event store', () => {
  it('applies migrations once, recording each version', async () => {
    expect(await migrate(db.pool, 'consent')).toEqual([]);
    const { rows } = await db.pool.query('SELECT version FROM consent.schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it('migrates safely when several instances start at once', async () => {
    const results = await Promise.all([1, 2, 3].map(() => migrate(db.pool, 'registry')));
    expect(results.flat()).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it('migrates a read model safely when several instances start at once', async () => {
    const model = {
      model: 'notes',
      migrations: [
        { version: 1, name: 'notes', sql: 'CREATE TABLE {schema}.notes (id text PRIMARY KEY)' },
        { version: 2, name: 'bodies', sql: 'ALTER TABLE {schema}.notes ADD COLUMN body text' },
      ],
    };
    const results = await Promise.all([1, 2, 3].map(() => migrateReadModel(db.pool, 'registry', model)));
    expect(results.flat()).toEqual([1, 2]);
  });

  it('rejects a schema name that is not a plain identifier', () => {
    expect(() => new PostgresEventStore({ pool: db.pool, schema: 'x; DROP TABLE y', source: '/s' })).toThrow(
      /invalid schema name/,
    );
  });

  it('refuses an append to a stream last written by a newer transaction, so xid order keeps stream order', async () => {
    const id = `grant-${randomUUID()}`;
    const other = `grant-${randomUUID()}`;
    await store.append(id, 'no_stream', [grantCreated(id)]);
    await expect(
      store.transaction(async (older) => {
        // The older transaction takes its id first (by writing elsewhere) ...
        await older.append(other, 'no_stream', [grantCreated(other)]);
        // ... a newer one appends version 2 and commits ...
        await store.append(id, 1, [orgConnected(id, 'newer')]);
        // ... so the older one must not append version 3 after it.
        await older.append(id, 2, [orgConnected(id, 'older')]);
      }),
    ).rejects.toBeInstanceOf(ConcurrencyError);
    expect((await store.readStream(id)).currentVersion).toBe(2);
    expect((await store.readStream(other)).currentVersion).toBe(0);
  });

  it('records trace context and metadata given with the append', async () => {
    const id = `grant-${randomUUID()}`;
    await store.append(id, 'no_stream', [grantCreated(id)], {
      metadata: { correlationId: 'req-1', causationId: 'cmd-1' },
    });
    const [event] = (await store.readStream(id)).events;
    expect(event!.metadata).toMatchObject({ correlationId: 'req-1', causationId: 'cmd-1' });
    expect(event!.source).toBe('/grantline/consent');
  });
});

describe('group commit', () => {
  it('commits many concurrent new-stream appends in few statements, each caller resolved after its commit', async () => {
    const group = new GroupCommit(store);
    const ids = Array.from({ length: 300 }, () => `grant-${randomUUID()}`);
    await Promise.all(ids.map((id) => group.append(id, grantCreated(id))));
    const { rows } = await db.pool.query(
      'SELECT count(*)::int AS n FROM consent.events WHERE stream_id = ANY($1)',
      [ids],
    );
    expect(rows[0].n).toBe(300);
  });

  it('fails the callers of a batch that cannot commit, and the next batch still goes through', async () => {
    const taken = `grant-${randomUUID()}`;
    await store.append(taken, 'no_stream', [grantCreated(taken)]);
    const group = new GroupCommit(store, { maxInFlight: 1 });
    const first = group.append(`grant-${randomUUID()}`, grantCreated('x')); // written alone, at once
    // queued behind it, so written together: one of them cannot be version 1 of a new stream
    const doomed = [
      group.append(taken, grantCreated(taken)),
      group.append(`grant-${randomUUID()}`, grantCreated('y')),
    ];
    await first;
    const results = await Promise.allSettled(doomed);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
    const after = `grant-${randomUUID()}`;
    await group.append(after, grantCreated(after));
    expect((await store.readStream(after)).currentVersion).toBe(1);
  });
});
