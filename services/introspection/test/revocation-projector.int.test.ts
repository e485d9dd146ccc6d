import { randomUUID } from 'node:crypto';
import type { ConsumedEvent } from '@grantline/message-bus';
import { MemoryRevocationCache, revocationKeys } from '@grantline/revocation-cache';
import { createTestDatabase, eventually, feedProjection, type TestDatabase } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { familyKey } from '../src/domain/facts.ts';
import { FactLog, factsProjection } from '../src/projections/facts.ts';
import { at, consumed, event, factsIn, history, newFactsSchema } from './revocation-events.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase(inject('infra'));
});
afterAll(() => db?.drop());

const snapshot = (schema: string) => factsIn(db.pool, schema);

/** The projection with an in-memory deny-list that must not fail, unless the test says otherwise. */
const projectionOf = (schema: string, options: Partial<Parameters<typeof factsProjection>[1]> = {}) =>
  factsProjection(schema, {
    ttlSeconds: 660,
    cache: () => new MemoryRevocationCache(),
    cacheFailed: (error) => {
      throw error;
    },
    ...options,
  });

describe('revocation projector', () => {
  it('F7 / F8: replayed from offset 0, duplicated and out of order, it records the same facts', async () => {
    const events = history().map(consumed);
    const apply = async (order: ConsumedEvent[]) => {
      const schema = await newFactsSchema(db.pool);
      const project = projectionOf(schema);
      await feedProjection(db.pool, project, order);
      return schema;
    };
    const inOrder = await apply(events);
    // reversed, then everything again from the start (a replay from offset 0)
    const shuffled = await apply([...events].reverse().concat(events));
    const facts = await snapshot(inOrder);
    expect(await snapshot(shuffled)).toEqual(facts);
    const g = (events[0]!.data as { grantId: string }).grantId;
    expect(facts.map((f) => f.key).sort()).toEqual(
      [
        revocationKeys.grant(g),
        revocationKeys.grantOrganisation(g, 'acme'),
        revocationKeys.token('j1'),
        revocationKeys.token('j2'),
        revocationKeys.token('j3'),
        familyKey((events[4]!.data as { familyId: string }).familyId),
        revocationKeys.subject('bob'),
        revocationKeys.client('evil'),
      ].sort(),
    );
    // the grant's fact keeps its first revocation and the expiry of its last (TTL after each)
    const grant = facts.find((f) => f.key === revocationKeys.grant(g))!;
    expect(grant.revoked_at).toEqual(events[5]!.time && new Date(events[5]!.time));
    expect(grant.expires_at).toEqual(new Date(at(59).getTime() + 660_000));
    // reconnecting the organisation does not take its disconnection back: revocation is terminal
    expect(facts.some((f) => f.key === revocationKeys.grantOrganisation(g, 'acme'))).toBe(true);
  });

  it('F7 / F8: a run in one statement (as the runtime applies it, with no ledger) records the same facts', async () => {
    const events = history().map(consumed);
    const fresh = async () => {
      const schema = await newFactsSchema(db.pool);
      const recorded: string[] = [];
      const project = projectionOf(schema, { recorded: (keys) => recorded.push(...keys) });
      return { schema, project, recorded };
    };
    const oneByOne = await fresh();
    await feedProjection(db.pool, oneByOne.project, events);
    const run = await fresh();
    // one run holding every event twice, reversed then in order: each key is touched once
    await run.project.applyRun([...events].reverse().concat(events), db.pool);
    // and a replay of single events afterwards, in autocommit
    for (const e of events) await run.project.applyRun([e], db.pool);
    expect(await snapshot(run.schema)).toEqual(await snapshot(oneByOne.schema));
    expect(new Set(run.recorded)).toEqual(new Set(oneByOne.recorded));
    // numbered at commit, each key once per run: the run drew one number per distinct key
    const { rows } = await db.pool.query<{ n: number; distinct: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT published_seq)::int AS distinct FROM ${run.schema}.revocation_facts`,
    );
    expect(rows[0]).toEqual({ n: 8, distinct: 8 });
  });

  it('numbers each fact once and sends it under its number when two instances publish at once, and a finished pass leaves none behind', async () => {
    const schema = await newFactsSchema(db.pool, 'facts_race');
    const keys = Array.from({ length: 300 }, () => revocationKeys.token(randomUUID()));
    await db.pool.query(
      `INSERT INTO ${schema}.revocation_facts (key, fact, revoked_at, expires_at)
       SELECT k, jsonb_build_object('key', k, 'kind', 'token', 'jti', k), now(), now() + interval '10 minutes'
       FROM unnest($1::text[]) AS k`,
      [keys],
    );
    const sent: { key: string; sequence: number }[] = [];
    const instances = [new FactLog(db.pool, schema), new FactLog(db.pool, schema)];
    // a publication pass as the publisher runs it: rounds of (here small) batches while more may be left
    const pass = async (log: FactLog) => {
      for (;;) {
        const round = await log.publish(async (facts) => {
          sent.push(...facts.map((f) => ({ key: f.key, sequence: f.sequence })));
        }, 40);
        if (!round.more) return;
      }
    };
    // two passes on each instance at once: each pass, once it returns, has left nothing recorded
    // before it unpublished (what a heartbeat after it vouches for), whatever the other instance took
    await Promise.all(instances.flatMap((log) => [pass(log), pass(log)]));
    const { rows } = await db.pool.query<{ key: string; published_seq: string; sent: boolean }>(
      `SELECT key, published_seq, sent FROM ${schema}.revocation_facts`,
    );
    expect(rows).toHaveLength(300);
    expect(rows.every((r) => r.sent && r.published_seq !== null)).toBe(true);
    expect(new Set(rows.map((r) => r.published_seq)).size).toBe(300);
    // whatever was sent went out under the number the fact keeps (a renumbered fact would differ)
    const numbered = new Map(rows.map((r) => [r.key, Number(r.published_seq)]));
    expect(sent.every((s) => numbered.get(s.key) === s.sequence)).toBe(true);
    expect(new Set(sent.map((s) => s.key))).toEqual(new Set(keys));
  });

  it('numbers a fact in the transaction that records it, in commit order, so a pass only reads and sends it', async () => {
    const schema = await newFactsSchema(db.pool, 'facts_numbered');
    const project = projectionOf(schema);
    const record = async (grantId: string) => {
      const tx = await db.pool.connect();
      try {
        await tx.query('BEGIN');
        await project.apply(
          consumed(event('GrantRevoked', `grant-${grantId}`, { grantId, reason: 'user' }, new Date())),
          tx,
        );
        await tx.query('COMMIT');
      } finally {
        tx.release();
      }
    };
    await record('n1');
    await record('n2');
    const { rows } = await db.pool.query<{ key: string; published_seq: string | null; sent: boolean }>(
      `SELECT key, published_seq, sent FROM ${schema}.revocation_facts ORDER BY id`,
    );
    expect(rows.map((r) => r.key)).toEqual([revocationKeys.grant('n1'), revocationKeys.grant('n2')]);
    expect(rows.every((r) => r.published_seq !== null && !r.sent)).toBe(true);
    expect(Number(rows[1]!.published_seq)).toBeGreaterThan(Number(rows[0]!.published_seq));
    // a pass sends them under those numbers, in order, and marks them sent
    const sent: { key: string; sequence: number }[] = [];
    const round = await new FactLog(db.pool, schema).publish(async (facts) => {
      sent.push(...facts.map((f) => ({ key: f.key, sequence: f.sequence })));
    });
    expect(round).toEqual({ sent: 2, more: false });
    expect(sent).toEqual(rows.map((r) => ({ key: r.key, sequence: Number(r.published_seq) })));
    const after = await db.pool.query(
      `SELECT count(*)::int AS n FROM ${schema}.revocation_facts WHERE NOT sent`,
    );
    expect(after.rows[0].n).toBe(0);
  });

  it('records a fact the deny-list cannot take (Redis down), and says so so the deny-list is copied again', async () => {
    const schema = await newFactsSchema(db.pool, 'facts');
    const failures: unknown[] = [];
    const project = projectionOf(schema, {
      cache: () => ({
        revoke: () => Promise.reject(new Error('ECONNREFUSED')),
        isRevoked: () => Promise.reject(new Error('ECONNREFUSED')),
        ping: () => Promise.reject(new Error('ECONNREFUSED')),
        close: async () => {},
      }),
      cacheFailed: (error) => failures.push(error),
    });
    const tx = await db.pool.connect();
    try {
      await project.apply(
        consumed(event('GrantRevoked', 'grant-x', { grantId: 'x', reason: 'user' }, new Date())),
        tx,
      );
    } finally {
      tx.release();
    }
    expect((await snapshot(schema)).map((f) => f.key)).toEqual([revocationKeys.grant('x')]);
    await eventually(() => (failures.length === 1 ? true : undefined), { what: 'the miss to be told' });
  });

  it('F4: a deny-list that never answers (Redis blackholed) does not hold the record up', async () => {
    const schema = await newFactsSchema(db.pool, 'facts');
    const project = projectionOf(schema, {
      cache: () => ({
        revoke: () => new Promise<void>(() => {}),
        isRevoked: () => new Promise<boolean>(() => {}),
        ping: () => new Promise<void>(() => {}),
        close: async () => {},
      }),
      cacheFailed: () => {},
    });
    const tx = await db.pool.connect();
    const started = Date.now();
    try {
      for (const id of ['y1', 'y2', 'y3'])
        await project.apply(
          consumed(event('GrantRevoked', `grant-${id}`, { grantId: id, reason: 'user' }, new Date())),
          tx,
        );
    } finally {
      tx.release();
    }
    expect(Date.now() - started).toBeLessThan(1_000);
    expect((await snapshot(schema)).map((f) => f.key).sort()).toEqual(
      ['y1', 'y2', 'y3'].map((id) => revocationKeys.grant(id)),
    );
  });
});
