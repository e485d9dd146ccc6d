import { randomUUID } from 'node:crypto';
import { migrateReadModels } from '@grantline/event-store';
import type { ConsumedEvent } from '@grantline/message-bus';
import { MemoryRevocationCache, revocationKeys } from '@grantline/revocation-cache';
import {
  createTestDatabase,
  eventually,
  feedProjection,
  type TestDatabase,
  uniqueName,
} from '@grantline/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FactSet, factNotifications } from '../src/projections/fact-set.ts';
import { FactLog, factsProjection, factsTables } from '../src/projections/facts.ts';

const logger = { warn: () => {} };
let db: TestDatabase;
const pools: pg.Pool[] = [];
const stops: (() => Promise<void>)[] = [];
beforeAll(async () => {
  db = await createTestDatabase(inject('infra'));
});
afterAll(async () => {
  for (const stop of stops) await stop();
  for (const p of pools) await p.end();
  await db?.drop();
});

const event = (type: string, data: unknown, time: Date): ConsumedEvent => ({
  id: randomUUID(),
  type,
  ceType: `dev.grantline.${type}.v1`,
  source: '/grantline/test',
  subject: 's',
  streamVersion: 1,
  time: time.toISOString(),
  data,
  topic: 't',
  partition: 0,
  offset: '0',
});

/** One service instance's facts: a pool of its own (named, so a test can cut its listener) and its set. */
const instance = async (schema: string, name: string) => {
  const pool = new pg.Pool({ connectionString: db.url, application_name: name, max: 3 });
  // as the test database's own pool: a client still closing when the database is dropped at the end
  // (DROP DATABASE ... WITH (FORCE)) reports it as an idle client's error, which is expected here
  pool.on('error', () => {});
  pools.push(pool);
  const set = new FactSet(pool, schema, new FactLog(pool, schema));
  stops.push(await set.watch(logger));
  const project = factsProjection(schema, {
    ttlSeconds: 660,
    cache: () => new MemoryRevocationCache(),
    cacheFailed: (error) => {
      throw error;
    },
    recorded: (keys, at) => set.add(keys, at),
  });
  const apply = (e: ConsumedEvent) => feedProjection(pool, project, [e]);
  return { pool, set, apply };
};

const newSchema = async () => {
  const schema = uniqueName('factset');
  await db.pool.query(`CREATE SCHEMA ${schema}`);
  await migrateReadModels(db.pool, schema, [factsTables]);
  return schema;
};

describe('revocation facts in memory (FactSet)', () => {
  it('splits a large event into notifications Postgres accepts, losing no key', () => {
    const keys = Array.from({ length: 600 }, (_, i) => revocationKeys.token(`${randomUUID()}-${i}`));
    const payloads = factNotifications(keys, new Date(1_000));
    expect(payloads.length).toBeGreaterThan(1);
    for (const p of payloads) expect(Buffer.byteLength(p)).toBeLessThan(8_000);
    expect(payloads.flatMap((p) => (JSON.parse(p) as { k: string[] }).k)).toEqual(keys);
  });

  it("a fact instance A records is in instance B's memory, with A's revocation time", async () => {
    const schema = await newSchema();
    const a = await instance(schema, 'facts-a');
    const b = await instance(schema, 'facts-b');
    expect(a.set.isLive && b.set.isLive).toBe(true);
    const revokedAt = new Date(Math.floor(Date.now() / 1_000) * 1_000 - 5_000);
    await a.apply(event('SubjectRevoked', { subject: 'ada', reason: 'admin' }, revokedAt));
    // a family revoked with many access tokens: more keys than one notification holds
    const jtis = Array.from({ length: 400 }, () => randomUUID());
    await a.apply(
      event(
        'RefreshFamilyRevoked',
        { familyId: 'f'.repeat(22), clientId: 'app', grantId: 'g', reason: 'reuse', accessTokenIds: jtis },
        revokedAt,
      ),
    );
    const keys = [revocationKeys.subject('ada'), ...jtis.map(revocationKeys.token)];
    const seen = await eventually(
      async () => {
        const found = await b.set.revoked(keys);
        return found.size === keys.length ? found : undefined;
      },
      { what: "A's facts in B" },
    );
    expect(seen.get(revocationKeys.subject('ada'))).toEqual(revokedAt);
    // from memory, not the table: the rows gone, both instances still know
    await db.pool.query(`DELETE FROM ${schema}.revocation_facts`);
    expect((await b.set.revoked(keys)).size).toBe(keys.length);
    expect((await a.set.revoked(keys)).size).toBe(keys.length);
    // an earlier revocation of the same key (events out of order) lowers the time, as the table does
    const earlier = new Date(revokedAt.getTime() - 60_000);
    await a.apply(event('SubjectRevoked', { subject: 'ada', reason: 'admin' }, earlier));
    await eventually(
      async () =>
        (await b.set.revoked([revocationKeys.subject('ada')]))
          .get(revocationKeys.subject('ada'))
          ?.getTime() === earlier.getTime()
          ? true
          : undefined,
      { what: 'the earlier time in B' },
    );
  });

  it('its version moves with every fact added or moved earlier, and is undefined while it is not live', async () => {
    const schema = await newSchema();
    const a = await instance(schema, 'facts-v');
    const before = a.set.version;
    expect(before).toBeTypeOf('number');
    a.set.add([revocationKeys.grant('gv')], 2_000);
    const added = a.set.version!;
    expect(added).toBeGreaterThan(before!);
    // the same fact again, or a later time: nothing changes, nothing kept need be read again
    a.set.add([revocationKeys.grant('gv')], 2_000);
    a.set.add([revocationKeys.grant('gv')], 3_000);
    expect(a.set.version).toBe(added);
    a.set.add([revocationKeys.grant('gv')], 1_000);
    expect(a.set.version).toBeGreaterThan(added);
    const earlier = a.set.version!;
    await db.pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE application_name = 'facts-v' AND query ILIKE 'LISTEN%'`,
    );
    await eventually(() => (a.set.isLive ? undefined : true), { what: 'not live' });
    expect(a.set.version).toBeUndefined();
    // live again after reading the table: a version no answer kept before can match
    await eventually(() => (a.set.isLive ? true : undefined), { what: 'live again' });
    expect(a.set.version).toBeGreaterThan(earlier);
  });

  it('an instance whose listener is down checks the table, and is back in memory once it has read it again', async () => {
    const schema = await newSchema();
    const a = await instance(schema, 'facts-a2');
    const b = await instance(schema, 'facts-b2');
    expect(b.set.isLive).toBe(true);
    // cut B's listening connection (a Postgres restart, a network drop)
    await db.pool.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE application_name = 'facts-b2' AND query ILIKE 'LISTEN%'`,
    );
    await eventually(() => (b.set.isLive ? undefined : true), { what: 'B not live' });
    // recorded while B hears nothing: B answers from the table
    await a.apply(event('GrantRevoked', { grantId: 'g1', reason: 'user' }, new Date()));
    expect((await b.set.revoked([revocationKeys.grant('g1')])).has(revocationKeys.grant('g1'))).toBe(true);
    // back: it has read the table again (the fact it missed) and answers from memory
    await eventually(() => (b.set.isLive ? true : undefined), { what: 'B live again' });
    await db.pool.query(`DELETE FROM ${schema}.revocation_facts`);
    expect((await b.set.revoked([revocationKeys.grant('g1')])).has(revocationKeys.grant('g1'))).toBe(true);
  });
});
