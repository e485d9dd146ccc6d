import { randomUUID } from 'node:crypto';
import { migrate, Relay, relayQueries } from '@grantline/event-store';
import type { RecordedEvent } from '@grantline/events';
import { createTestDatabase, eventually } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { logger } from './harness.ts';

const SCHEMA = 'consent';

/**
 * Finding 0 of the hardening review: the relay ordered its drain by the text form of the transaction
 * id, so a batch straddling a power of ten (`'100' < '99'`) moved the checkpoint past events that were
 * then never relayed. Transaction ids are written explicitly here (below the cluster's current xid,
 * so the relay's gate lets them through), as many as it takes to cross the boundary in several batches.
 */
describe('relay order across transaction ids of different lengths', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    db = await createTestDatabase(inject('infra'), 5);
    await migrate(db.pool, SCHEMA);
  });
  afterAll(() => db?.drop());

  /** The largest power of ten with room for `span` ids either side below the cluster's current xid. */
  const boundaryBelowCurrentXid = async (span: number): Promise<bigint> => {
    const { rows } = await db.pool.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid');
    const current = BigInt(rows[0]!.xid);
    let boundary = 100n;
    while (boundary * 10n + BigInt(span) < current) boundary *= 10n;
    expect(boundary + BigInt(span)).toBeLessThan(current);
    return boundary;
  };

  it('finding 0: publishes every event in (transaction id, position) order when a batch straddles a power of ten', async () => {
    const span = 6;
    const boundary = await boundaryBelowCurrentXid(span);
    // two events per transaction id from boundary-6 to boundary+5, inserted in a shuffled order
    const ids = Array.from({ length: span * 2 }, (_, i) => boundary - BigInt(span) + BigInt(i));
    const rows = ids.flatMap((xid) => [xid, xid]).sort(() => Math.random() - 0.5);
    for (const xid of rows) {
      await db.pool.query(
        `INSERT INTO ${SCHEMA}.events (transaction_id, event_id, stream_id, stream_version, type, data, source)
         VALUES ($1::text::xid8, $2, $3, 1, 'OrganisationConnected', $4, '/grantline/consent')`,
        [xid.toString(), randomUUID(), `grant-${randomUUID()}`, JSON.stringify({ xid: xid.toString() })],
      );
    }
    const published: RecordedEvent[] = [];
    const relay = new Relay({
      pool: db.pool,
      schema: SCHEMA,
      logger,
      batchSize: 5, // 24 rows: five batches, the boundary inside one of them
      pollIntervalMs: 50,
      publisher: { publish: async (events) => void published.push(...events) },
    });
    relay.start();
    // without the fix, the checkpoint jumps past the shorter ids and the wait times out
    await eventually(() => (published.length >= rows.length ? true : undefined), {
      timeoutMs: 10_000,
      what: `${rows.length} events relayed`,
    })
      .catch(() => {})
      .finally(() => relay.stop());
    expect(published.length).toBe(rows.length);
    const order = published.map((e) => ({
      xid: BigInt((e.data as { xid: string }).xid),
      position: e.position,
    }));
    const expected = [...order].sort((a, b) =>
      a.xid === b.xid ? Number(BigInt(a.position) - BigInt(b.position)) : a.xid < b.xid ? -1 : 1,
    );
    expect(order).toEqual(expected);
    expect(new Set(published.map((e) => e.id)).size).toBe(rows.length);
    expect(order[0]!.xid).toBe(boundary - BigInt(span));
  });

  it('finding 0: the drain and its held-back probe walk the (transaction id, position) index', async () => {
    await db.pool.query(
      `INSERT INTO ${SCHEMA}.events (event_id, stream_id, stream_version, type, data, source)
       SELECT gen_random_uuid(), 'bulk-' || g, 1, 'OrganisationConnected', '{}', '/grantline/consent'
       FROM generate_series(1, 20000) g`,
    );
    await db.pool.query(`ANALYZE ${SCHEMA}.events`);
    const sql = relayQueries(SCHEMA);
    const plan = async (query: string, params: unknown[]) => {
      const { rows } = await db.pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${query}`, params);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    };
    // a checkpoint near the end of the table, as a relay that keeps up has
    const { rows } = await db.pool.query<{ xid: string; position: string }>(
      `SELECT transaction_id::text AS xid, position::text FROM ${SCHEMA}.events ORDER BY position DESC LIMIT 1`,
    );
    const checkpoint = [rows[0]!.xid, rows[0]!.position];
    const { rows: gate } = await db.pool.query<{ gate: string }>(sql.gate);
    const query = await plan(sql.drain, [...checkpoint, gate[0]!.gate, 500, 'kafka', false]);
    // the batch and the first event beyond the bound: each an index range scan, neither a sort
    expect(query.match(/Index (Only )?Scan using events_relay_order/g)).toHaveLength(2);
    expect(query).not.toMatch(/Seq Scan on (\w+\.)?events\b|Sort Key/);
    // from a checkpoint far behind, with all 20,000 events below the bound: the probe for one beyond
    // it starts at the bound, the batch stops at 500; no row is read only to be filtered out
    const { rows: run } = await db.pool.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${sql.drain}`,
      ['0', '0', null, 500, 'kafka', false],
    );
    const analyzed = run.map((r) => r['QUERY PLAN']).join('\n');
    expect(analyzed).not.toMatch(/Rows Removed by/);
    expect(analyzed).toMatch(/Limit \(actual time=[\d.]+\.\.[\d.]+ rows=500 /);
    // pages read by the whole statement: a dozen for the batch and a few for the probe, where a probe
    // walking the 20,000 entries below the bound reads every leaf page of the index (78 here)
    const [, hit, read] = /Buffers: shared hit=(\d+)(?: read=(\d+))?/.exec(analyzed) ?? [];
    expect(Number(hit) + Number(read ?? 0)).toBeLessThan(40);
  });
});
