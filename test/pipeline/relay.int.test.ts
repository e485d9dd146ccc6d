import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConcurrencyError, PostgresEventStore, relayedThrough, withRetry } from '@grantline/event-store';
import { TOPICS } from '@grantline/events';
import { eventually } from '@grantline/testing';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { assertStreamOrder, createPipeline, orgConnected } from './harness.ts';

describe('relay: Postgres event store -> Kafka', () => {
  let p: Awaited<ReturnType<typeof createPipeline>>;
  beforeAll(async () => {
    p = await createPipeline(inject('infra'));
  });
  afterEach(() => p?.stopRelays());
  afterAll(() => p?.close());

  const checkpoint = async () =>
    BigInt(
      (await p.db.pool.query(`SELECT position FROM ${p.schema}.relay_checkpoints WHERE relay = 'kafka'`))
        .rows[0].position,
    );

  it('delivers 10,000 events from 8 concurrent writers over 200 streams, late commits included, in stream order', async () => {
    const relay = p.relay();
    relay.start();
    const streams = Array.from({ length: 200 }, () => `grant-${randomUUID()}`);
    const writers = 8;
    const perWriter = 1_250;
    let held = 0;
    const writer = async (w: number) => {
      for (let i = 0; i < perWriter; i++) {
        const stream = streams[(w * 7919 + i * 31) % streams.length]!;
        const event = orgConnected(stream, `org-${w}-${i}`);
        if (i % 97 === 13) {
          // A transaction held open while later ones commit: its events must not be skipped.
          held++;
          // as a command handler would: a transaction that lost the stream to a newer one (retriable
          // ConcurrencyError; retrying inside it cannot help, its transaction id stays older) runs again
          await withRetry(
            () =>
              p.store.transaction(async (tx) => {
                await tx.append(stream, 'any', [event]);
                await sleep(150 + (i % 5) * 50);
              }),
            { attempts: 10, retryOn: (e) => e instanceof ConcurrencyError },
          );
        } else {
          await p.store.append(stream, 'any', [event]);
        }
      }
    };
    await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
    const total = writers * perWriter;
    const { rows } = await p.db.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${p.schema}.events`);
    expect(Number(rows[0]!.n)).toBe(total);
    expect(held).toBeGreaterThan(50);

    const received = await p.readTopic(TOPICS.grants, total, 120_000);
    const ids = new Set(received.map((e) => e.id));
    const { rows: stored } = await p.db.pool.query<{ event_id: string }>(
      `SELECT event_id FROM ${p.schema}.events`,
    );
    expect(stored.filter((r) => !ids.has(r.event_id))).toEqual([]);
    const versions = assertStreamOrder(received);
    expect([...versions.values()].reduce((a, b) => a + b, 0)).toBe(total);
    expect(
      received.every(
        (e) => e.source === '/grantline/consent' && e.ceType === 'dev.grantline.OrganisationConnected.v1',
      ),
    ).toBe(true);
    await relay.stop();
  }, 180_000);

  it('elects one leader among two relays and fails over when it stops', async () => {
    const stream = `grant-${randomUUID()}`;
    const before = Number((await p.db.pool.query(`SELECT count(*) AS n FROM ${p.schema}.events`)).rows[0].n);
    const a = p.relay();
    const b = p.relay();
    a.start();
    b.start();
    for (let i = 0; i < 300; i++) await p.store.append(stream, 'any', [orgConnected(stream, `o${i}`)]);
    await sleep(500);
    expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
    const [leader, standby] = a.isLeader ? [a, b] : [b, a];
    await leader.stop();
    for (let i = 300; i < 500; i++) await p.store.append(stream, 'any', [orgConnected(stream, `o${i}`)]);
    const received = await p.readTopic(TOPICS.grants, before + 500);
    const ours = received.filter((e) => e.subject === stream);
    expect(assertStreamOrder(ours).get(stream)).toBe(500);
    expect(standby.isLeader).toBe(true);
    await standby.stop();
  });

  it('resumes from its checkpoint after a restart without republishing what was confirmed', async () => {
    const stream = `grant-${randomUUID()}`;
    const r1 = p.relay();
    r1.start();
    await p.store.append(stream, 'no_stream', [orgConnected(stream, 'first')]);
    const count = async () =>
      Number((await p.db.pool.query(`SELECT count(*) AS n FROM ${p.schema}.events`)).rows[0].n);
    const first = await p.readTopic(TOPICS.grants, await count());
    expect(first.some((e) => e.subject === stream)).toBe(true);
    await r1.stop({ flush: true });
    await p.store.append(stream, 1, [orgConnected(stream, 'second')]);
    const r2 = p.relay();
    r2.start();
    const all = await p.readTopic(TOPICS.grants, await count());
    expect(all.filter((e) => e.subject === stream).map((e) => e.streamVersion)).toEqual([1, 2]);
    await r2.stop();
  });

  it('is woken by NOTIFY, not only by its poll', async () => {
    const stream = `grant-${randomUUID()}`;
    const relay = p.relay({ pollIntervalMs: 60_000 });
    relay.start();
    await sleep(300); // leader, idle, its next poll a minute away
    const { lastPosition } = await p.store.append(stream, 'no_stream', [orgConnected(stream, 'x')]);
    // The checkpoint moves only after Kafka acknowledged the batch: well before the poll would run.
    await eventually(async () => ((await checkpoint()) >= BigInt(lastPosition) ? true : undefined), {
      timeoutMs: 5_000,
      what: 'the relay to publish after NOTIFY',
    });
    await relay.stop();
  });

  it('is not held back by a transaction outside its store, however long it runs', async () => {
    const stream = `grant-${randomUUID()}`;
    const relay = p.relay({ pollIntervalMs: 60_000 });
    relay.start();
    await sleep(300);
    // another service's transaction (here: one that took a transaction id and writes nothing yet)
    const other = await p.db.pool.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_current_xact_id()');
      const { lastPosition } = await p.store.append(stream, 'no_stream', [orgConnected(stream, 'x')]);
      const started = Date.now();
      await eventually(async () => ((await checkpoint()) >= BigInt(lastPosition) ? true : undefined), {
        timeoutMs: 2_000,
        what: 'the relay to publish while an unrelated transaction is open',
      });
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      await other.query('ROLLBACK');
      other.release();
      await relay.stop();
    }
  });

  it('waits for a store transaction that took its transaction id before its first append', async () => {
    const [early, late] = [`grant-${randomUUID()}`, `grant-${randomUUID()}`];
    const relay = p.relay({ pollIntervalMs: 50 });
    relay.start();
    let lateCommitted!: () => void;
    const lateDone = new Promise<void>((resolve) => {
      lateCommitted = resolve;
    });
    const held = p.store.transaction(async (tx, client) => {
      // an older transaction id than the append below, taken by a write before this transaction's events
      await client.query('SELECT pg_current_xact_id()');
      await p.store.append(late, 'no_stream', [orgConnected(late, 'newer')]).then(() => lateCommitted());
      await lateDone;
      await sleep(300); // the relay drains meanwhile: the newer event must wait
      await tx.append(early, 'no_stream', [orgConnected(early, 'older')]);
    });
    await held;
    const count = Number((await p.db.pool.query(`SELECT count(*) AS n FROM ${p.schema}.events`)).rows[0].n);
    const received = await p.readTopic(TOPICS.grants, count);
    const ours = received.filter((e) => e.subject === early || e.subject === late).map((e) => e.subject);
    // published in transaction id order, the older transaction's event first and nothing skipped
    expect(ours).toEqual([early, late]);
    await relay.stop();
  });

  it('saves what it published at once while later events wait for an older writer', async () => {
    const relay = p.relay({ pollIntervalMs: 5_000 });
    relay.start();
    await sleep(300);
    const [a, b, c, d] = Array.from({ length: 4 }, () => `grant-${randomUUID()}`);
    let release1!: () => void;
    let release3!: () => void;
    const opened = (release: (r: () => void) => void) => new Promise<void>((r) => release(r));
    let aPosition = '';
    const first = p.store.transaction(async (tx) => {
      aPosition = (await tx.append(a!, 'no_stream', [orgConnected(a!, 'a')])).lastPosition;
      await opened((r) => {
        release1 = r;
      });
    });
    await eventually(() => (aPosition ? true : undefined), { what: 'the first writer to append' });
    await p.store.append(b!, 'no_stream', [orgConnected(b!, 'b')]);
    let dAppended = false;
    const third = p.store.transaction(async (tx) => {
      await tx.append(d!, 'no_stream', [orgConnected(d!, 'd')]);
      dAppended = true;
      await opened((r) => {
        release3 = r;
      });
    });
    await eventually(() => (dAppended ? true : undefined), { what: 'the third writer to append' });
    await p.store.append(c!, 'no_stream', [orgConnected(c!, 'c')]);
    await sleep(1_200); // the relay has looked again and again meanwhile: its back-off has grown
    release1();
    await first;
    const committed = Date.now();
    // a and b go out; c waits for the third writer, still open: what went out is saved all the same
    expect(await relayedThrough(p.db.pool, p.schema, aPosition, { timeoutMs: 3_000 })).toBe(true);
    expect(Date.now() - committed).toBeLessThan(500);
    release3();
    await third;
    await relay.stop();
  });

  it('uses a schema-scoped store only', () => {
    expect(() => new PostgresEventStore({ pool: p.db.pool, schema: 'Bad-Name', source: '/x' })).toThrow();
  });
});
