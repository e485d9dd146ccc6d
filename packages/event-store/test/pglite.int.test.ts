import { randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { manualClock } from '@grantline/clock';
import type { RecordedEvent } from '@grantline/events';
import { eventually } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupCommit } from '../src/group-commit.ts';
import { pglitePool } from '../src/pglite/pool.ts';
import { migrate } from '../src/postgres/migrations.ts';
import { PostgresEventStore } from '../src/postgres/store.ts';
import { Relay } from '../src/relay.ts';
import { eventStoreContract, grantCreated, orgConnected } from './contract.ts';
import { readModelMigrationsContract } from './read-model-migrations.ts';

/** The embedded adapter: the same store, relay and group commit on PGlite, in process. */
const db = new PGlite();
const pool = pglitePool(db);
let store: PostgresEventStore;

beforeAll(async () => {
  await migrate(pool, 'consent');
  store = new PostgresEventStore({ pool, schema: 'consent', source: '/grantline/consent' });
});
afterAll(() => pool.end());

eventStoreContract('pglite', () => store);
readModelMigrationsContract('pglite', () => pool);

describe('event store on PGlite', () => {
  it('group-commits concurrent appends', async () => {
    const group = new GroupCommit(store);
    const ids = Array.from({ length: 50 }, () => `grant-${randomUUID()}`);
    await Promise.all(ids.map((id) => group.append(id, grantCreated(id))));
    for (const id of ids.slice(0, 5)) expect((await store.readStream(id)).currentVersion).toBe(1);
  });

  it('group-commits in one statement what a turn of the event loop appends, PGlite running one at a time', async () => {
    const serial = new PostgresEventStore({
      pool,
      schema: 'consent',
      source: '/grantline/consent',
      concurrentWrites: 1,
    });
    const group = new GroupCommit(serial);
    const ids = Array.from({ length: 30 }, () => `grant-${randomUUID()}`);
    // as requests finishing in one turn do: each appends after some awaits of its own
    await Promise.all(
      ids.map(async (id, i) => {
        for (let n = 0; n < i % 4; n++) await Promise.resolve();
        await group.append(id, grantCreated(id));
      }),
    );
    const { rows } = await pool.query<{ writes: number; events: number }>(
      'SELECT count(DISTINCT transaction_id)::int AS writes, count(*)::int AS events FROM consent.events WHERE stream_id = ANY($1)',
      [ids],
    );
    expect(rows[0]).toEqual({ writes: 1, events: 30 });
  });

  it('relays every committed event once in order, woken by the store', async () => {
    const published: RecordedEvent[] = [];
    const relay = new Relay({
      pool,
      schema: 'consent',
      logger: { info: () => {}, warn: () => {}, error: () => {} },
      pollIntervalMs: 5_000,
      publisher: { publish: async (events) => void published.push(...events) },
    });
    relay.start();
    try {
      const id = `grant-${randomUUID()}`;
      await store.append(id, 'no_stream', [grantCreated(id)]);
      await store.transaction(async (tx) => {
        await tx.append(id, 1, [orgConnected(id, 'org-2')]);
      });
      await eventually(
        () => (published.some((e) => e.streamId === id && e.streamVersion === 2) ? true : undefined),
        {
          what: 'both events relayed',
          timeoutMs: 3_000,
        },
      );
      const mine = published.filter((e) => e.streamId === id).map((e) => e.streamVersion);
      expect(mine).toEqual([1, 2]);
    } finally {
      await relay.stop();
    }
  });

  it("records each event at its store's clock (domain time), in appends, transactions and group commits", async () => {
    const clock = manualClock(Date.parse('2030-01-01T00:00:00Z'));
    const timed = new PostgresEventStore({ pool, schema: 'consent', source: '/grantline/consent', clock });
    const id = `grant-${randomUUID()}`;
    await timed.append(id, 'no_stream', [grantCreated(id)]);
    clock.advance(60_000);
    await timed.transaction((tx) => tx.append(id, 1, [orgConnected(id, 'org-2')]));
    const other = `grant-${randomUUID()}`;
    clock.advance(60_000);
    await new GroupCommit(timed).append(other, grantCreated(other));
    const times = [...(await store.readStream(id)).events, ...(await store.readStream(other)).events].map(
      (e) => e.time.toISOString(),
    );
    expect(times).toEqual([
      '2030-01-01T00:00:00.000Z',
      '2030-01-01T00:01:00.000Z',
      '2030-01-01T00:02:00.000Z',
    ]);
  });
});
