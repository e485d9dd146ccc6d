import { randomUUID } from 'node:crypto';
import { migrateReadModels } from '@grantline/event-store';
import { type RecordedEvent, TOPICS } from '@grantline/events';
import { generateKeyMaterial, serviceKeyEnv } from '@grantline/keys';
import type { ConsumedEvent } from '@grantline/message-bus';
import { MemoryRevocationCache, RedisRevocationCache, revocationKeys } from '@grantline/revocation-cache';
import { loadConfig, loadDistributedConfig, runtimeFromConfig } from '@grantline/service-kit';
import {
  createTestDatabase,
  eventually,
  feedProjection,
  type TestDatabase,
  uniqueName,
} from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startIntrospection } from '../src/app.ts';
import { introspectionConfigSchema } from '../src/config.ts';
import { familyKey } from '../src/domain/facts.ts';
import { FactLog, factsProjection, factsTables } from '../src/projections/facts.ts';
import type { StreamItem } from '../src/publisher.ts';

const base = Math.floor(Date.now() / 60_000) * 60_000;
const at = (s: number) => new Date(base + s * 1_000);
let seq = 0;
const event = (type: string, subject: string, data: unknown, time = at(++seq % 60)): RecordedEvent => ({
  id: randomUUID(),
  type,
  data,
  streamId: subject,
  streamVersion: 1,
  position: String(seq),
  time,
  source: '/grantline/test',
  metadata: {},
});
const consumed = (e: RecordedEvent): ConsumedEvent => ({
  id: e.id,
  type: e.type,
  ceType: `dev.grantline.${e.type}.v1`,
  source: e.source,
  subject: e.streamId,
  streamVersion: e.streamVersion,
  time: e.time.toISOString(),
  data: e.data,
  topic: 't',
  partition: 0,
  offset: '0',
});

/** One grant's life and its tokens' ends: every kind of fact the projector records. */
const history = (g = randomUUID(), family = randomUUID().replace(/-/g, '').slice(0, 22)) => [
  event('GrantCreated', `grant-${g}`, {
    grantId: g,
    subject: 'ada',
    clientId: 'app',
    organisations: ['acme', 'globex'],
    scopes: ['invoices.read'],
  }),
  event('OrganisationDisconnected', `grant-${g}`, { grantId: g, organisationId: 'acme' }),
  event('OrganisationConnected', `grant-${g}`, { grantId: g, organisationId: 'acme' }),
  event('TokenRevoked', 'access-token-j1', { tokenId: 'j1', tokenType: 'access_token', clientId: 'app' }),
  event('RefreshFamilyRevoked', `refresh-${family}`, {
    familyId: family,
    clientId: 'app',
    grantId: g,
    reason: 'reuse',
    accessTokenIds: ['j2', 'j3'],
  }),
  event('GrantRevoked', `grant-${g}`, { grantId: g, reason: 'user' }),
  // the same grant revoked again later (a redelivery, or a second disconnect): still one fact
  event('GrantRevoked', `grant-${g}`, { grantId: g, reason: 'admin' }, at(59)),
  event('SubjectRevoked', 'subject-revocation-bob', { subject: 'bob', reason: 'admin' }),
  event('ClientRevoked', 'client-revocation-evil', { clientId: 'evil', reason: 'admin' }),
];

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase(inject('infra'));
});
afterAll(() => db?.drop());

const snapshot = async (schema: string) =>
  (
    await db.pool.query(
      `SELECT key, fact, revoked_at, expires_at FROM ${schema}.revocation_facts ORDER BY key`,
    )
  ).rows;

describe('revocation projector', () => {
  it('F7 / F8: replayed from offset 0, duplicated and out of order, it records the same facts', async () => {
    const events = history().map(consumed);
    const apply = async (schema: string, order: ConsumedEvent[]) => {
      await db.pool.query(`CREATE SCHEMA ${schema}`);
      await migrateReadModels(db.pool, schema, [factsTables]);
      const project = factsProjection(schema, {
        ttlSeconds: 660,
        cache: () => new MemoryRevocationCache(),
        cacheFailed: (error) => {
          throw error;
        },
      });
      await feedProjection(db.pool, project, order);
    };
    const [inOrder, shuffled] = [uniqueName('facts'), uniqueName('facts')];
    await apply(inOrder, events);
    // reversed, then everything again from the start (a replay from offset 0)
    await apply(shuffled, [...events].reverse().concat(events));
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
      const schema = uniqueName('facts');
      await db.pool.query(`CREATE SCHEMA ${schema}`);
      await migrateReadModels(db.pool, schema, [factsTables]);
      const recorded: string[] = [];
      const project = factsProjection(schema, {
        ttlSeconds: 660,
        cache: () => new MemoryRevocationCache(),
        cacheFailed: (error) => {
          throw error;
        },
        recorded: (keys) => recorded.push(...keys),
      });
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
    const schema = uniqueName('facts_race');
    await db.pool.query(`CREATE SCHEMA ${schema}`);
    await migrateReadModels(db.pool, schema, [factsTables]);
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
    const schema = uniqueName('facts_numbered');
    await db.pool.query(`CREATE SCHEMA ${schema}`);
    await migrateReadModels(db.pool, schema, [factsTables]);
    const project = factsProjection(schema, {
      ttlSeconds: 660,
      cache: () => new MemoryRevocationCache(),
      cacheFailed: () => {},
    });
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
    const schema = uniqueName('facts');
    await db.pool.query(`CREATE SCHEMA ${schema}`);
    await migrateReadModels(db.pool, schema, [factsTables]);
    const failures: unknown[] = [];
    const project = factsProjection(schema, {
      ttlSeconds: 660,
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
    const schema = uniqueName('facts');
    await db.pool.query(`CREATE SCHEMA ${schema}`);
    await migrateReadModels(db.pool, schema, [factsTables]);
    const project = factsProjection(schema, {
      ttlSeconds: 660,
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

  describe('as a service on Postgres, Kafka and Redis', () => {
    const infra = () => inject('infra');
    const prefix = `${uniqueName('rev')}.`;
    let service: Awaited<ReturnType<typeof startIntrospection>>;
    let cache: RedisRevocationCache;
    beforeAll(async () => {
      const env = {
        ...serviceKeyEnv(generateKeyMaterial()).introspection,
        DATABASE_URL: db.url,
        KAFKA_BROKERS: infra().kafkaBrokers.join(','),
        REDIS_URL: infra().redisUrl,
        KAFKA_TOPIC_PREFIX: prefix,
        LOG_LEVEL: 'silent',
        PORT: '0',
        GRANTLINE_ISSUER: 'http://127.0.0.1:1',
      };
      service = await startIntrospection(
        loadConfig(introspectionConfigSchema, env),
        runtimeFromConfig(loadDistributedConfig(env)),
        {
          onCrash: (e) => {
            throw e;
          },
        },
      );
      cache = new RedisRevocationCache({ url: infra().redisUrl, prefix: `grantline:${prefix}revoked:` });
    });
    afterAll(async () => {
      await service?.stop();
      await cache?.close();
    });

    it('F5: fills the deny-list, publishes each fact and a heartbeat a second, and rebuilds an emptied Redis before it is ready', async () => {
      // revoked now: each fact's TTL runs from its event's time
      const events = history().map((e) => ({ ...e, time: new Date() }));
      const g = (events[0]!.data as { grantId: string }).grantId;
      const seen: ConsumedEvent[] = [];
      const sub = await service.runtime.bus.subscribe({
        groupId: uniqueName('rs'),
        topics: [TOPICS.revocations],
        fromBeginning: true,
        onCrash: () => {},
        handle: async (e) => {
          seen.push(e);
        },
      });
      try {
        await service.runtime.bus.publish(events);
        await eventually(
          async () => ((await cache.isRevoked([revocationKeys.client('evil')])) ? true : undefined),
          {
            what: 'the deny-list',
          },
        );
        expect(await cache.isRevoked([revocationKeys.grant(g)])).toBe(true);
        expect(await cache.isRevoked([revocationKeys.grant(randomUUID())])).toBe(false);
        // remembered as long as the longest access token it may deny (600 s) plus the skew (60 s), no longer
        const ttl = await cache.redis.ttl(`grantline:${prefix}revoked:${revocationKeys.client('evil')}`);
        expect(ttl).toBeGreaterThan(600);
        expect(ttl).toBeLessThanOrEqual(660);
        // every fact on the topic, keyed by its deny-list key; heartbeats a second apart
        await eventually(
          () =>
            seen.filter((e) => e.type === 'RevocationFact').length >= 8 &&
            seen.filter((e) => e.type === 'RevocationHeartbeat').length >= 2
              ? true
              : undefined,
          { what: 'facts and heartbeats on the revocations topic' },
        );
        const fact = seen.find((e) => e.subject === revocationKeys.grant(g))!;
        expect(fact.data).toMatchObject({ key: revocationKeys.grant(g), kind: 'grant', grantId: g });
        expect(seen.find((e) => e.type === 'RevocationHeartbeat')!.subject).toBe('heartbeat');

        // Redis loses its data: readiness rebuilds the deny-list from the recorded facts first
        const keys = await cache.redis.keys(`grantline:${prefix}revoked:*`);
        await cache.redis.del(...keys);
        expect(await cache.isRevoked([revocationKeys.grant(g)])).toBe(false);
        const ready = await fetch(`${service.managementUrl}/readyz`);
        expect(ready.status).toBe(200);
        expect(await cache.isRevoked([revocationKeys.grant(g)])).toBe(true);
        expect(await cache.isRevoked([revocationKeys.token('j3')])).toBe(true);

        // the same events again (at least once): nothing new is recorded or published
        const before = await snapshot('introspection');
        await service.runtime.bus.publish(events.map((e) => ({ ...e, id: randomUUID() })));
        await new Promise((r) => setTimeout(r, 1_500));
        expect(await snapshot('introspection')).toEqual(before);
      } finally {
        await sub.stop();
      }
    });

    it('passes on to its stream the facts another instance published, in publication order', async () => {
      const items: StreamItem[] = [];
      const stop = service.publisher.listen((item) => items.push(item));
      try {
        const other = new FactLog(db.pool, 'introspection');
        const key = revocationKeys.token(randomUUID());
        await db.pool.query(
          `INSERT INTO introspection.revocation_facts (key, fact, revoked_at, expires_at)
           VALUES ($1, $2, now(), now() + interval '10 minutes')`,
          [key, JSON.stringify({ key, kind: 'token', jti: key.slice(4) })],
        );
        // numbered (and sent) by the other instance, or by this one's own pass: whichever came first
        await other.publish(async () => {});
        const fact = await eventually(
          () =>
            items.find((i) => i.type === 'fact' && i.fact.key === key) as
              | Extract<StreamItem, { type: 'fact' }>
              | undefined,
          { what: "the other instance's fact on this instance's stream" },
        );
        const { rows } = await db.pool.query(
          'SELECT published_seq FROM introspection.revocation_facts WHERE key = $1',
          [key],
        );
        expect(fact.fact.sequence).toBe(Number(rows[0].published_seq));
        const sequences = items.flatMap((i) => (i.type === 'fact' ? [i.fact.sequence] : []));
        expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
      } finally {
        stop();
      }
    });
  });
});
