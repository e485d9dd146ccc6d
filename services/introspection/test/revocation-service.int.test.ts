import { randomUUID } from 'node:crypto';
import { TOPICS } from '@grantline/events';
import { generateKeyMaterial, serviceKeyEnv } from '@grantline/keys';
import type { ConsumedEvent } from '@grantline/message-bus';
import { RedisRevocationCache, revocationKeys } from '@grantline/revocation-cache';
import { loadConfig, loadDistributedConfig, runtimeFromConfig } from '@grantline/service-kit';
import { createTestDatabase, eventually, type TestDatabase, uniqueName } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startIntrospection } from '../src/app.ts';
import { introspectionConfigSchema } from '../src/config.ts';
import { FactLog } from '../src/projections/facts.ts';
import type { StreamItem } from '../src/publisher.ts';
import { factsIn, history } from './revocation-events.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase(inject('infra'));
});
afterAll(() => db?.drop());

describe('revocation projector, as a service on Postgres, Kafka and Redis', () => {
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
      const before = await factsIn(db.pool, 'introspection');
      await service.runtime.bus.publish(events.map((e) => ({ ...e, id: randomUUID() })));
      await new Promise((r) => setTimeout(r, 1_500));
      expect(await factsIn(db.pool, 'introspection')).toEqual(before);
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
