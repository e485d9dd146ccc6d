import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type RevocationSubscriber, subscribeToRevocationTopic } from '../src/index.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The Kafka subscriber against a real broker, on a topic of its own (the topic prefix is unique). */
describe('resource server SDK: the deny-list kept warm from grantline.revocations.v1 on Kafka', () => {
  const brokers = inject('infra').kafkaBrokers;
  const prefix = `rs-${randomUUID().slice(0, 8)}.`;
  const topic = `${prefix}grantline.revocations.v1`;
  const kafka = new Kafka({ clientId: 'rs-test', brokers, logLevel: logLevel.NOTHING });
  let producer: Producer;
  const subscribers: RevocationSubscriber[] = [];
  let sequence = 0;

  const fact = (key: string, ttlMs = 600_000) => {
    const data = {
      key,
      kind: 'token',
      revokedAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + ttlMs).toISOString(),
      sequence: ++sequence,
    };
    return producer.send({
      topic,
      messages: [
        { key, value: JSON.stringify(data), headers: { ce_type: 'dev.grantline.RevocationFact.v1' } },
      ],
    });
  };
  const heartbeat = () =>
    producer.send({
      topic,
      messages: [
        {
          key: 'heartbeat',
          value: JSON.stringify({ time: new Date().toISOString(), lastSequence: sequence }),
          headers: { ce_type: 'dev.grantline.RevocationHeartbeat.v1' },
        },
      ],
    });

  beforeAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
      waitForLeaders: true,
    });
    await admin.disconnect();
    producer = kafka.producer();
    await producer.connect();
  });
  afterAll(async () => {
    for (const s of subscribers) await s.close();
    await producer?.disconnect();
  });

  it('bootstraps from the beginning of the topic, is ready only at a live heartbeat, applies live facts, and turns stale when heartbeats stop', async () => {
    await fact('jti:replayed');
    await heartbeat(); // a heartbeat of the past: it proves nothing about now
    const subscriber = subscribeToRevocationTopic({ brokers, topicPrefix: prefix });
    subscribers.push(subscriber);
    let ready = false;
    void subscriber.ready().then(() => {
      ready = true;
    });
    const until = Date.now() + 30_000;
    while (subscriber.denyList.revoked(['jti:replayed']) === undefined && Date.now() < until) await sleep(50);
    expect(subscriber.denyList.revoked(['jti:replayed'])).toBe('jti:replayed');
    expect(ready).toBe(false);
    const beating = setInterval(() => void heartbeat(), 200);
    try {
      await subscriber.ready();
      expect(subscriber.denyList.isFresh(1_000)).toBe(true);
      await fact('grant-org:g1:o2');
      const live = Date.now();
      while (!subscriber.denyList.revoked(['grant-org:g1:o2']) && Date.now() - live < 2_000) await sleep(10);
      expect(Date.now() - live).toBeLessThan(1_000);
      expect(subscriber.denyList.revoked(['grant-org:g1:o1'])).toBeUndefined();
    } finally {
      clearInterval(beating);
    }
    await sleep(700);
    expect(subscriber.denyList.isFresh(500)).toBe(false);
  });

  it('refuses a revocations topic of more than one partition: its heartbeat could not vouch for the others', async () => {
    const wide = `${prefix}wide.grantline.revocations.v1`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: wide, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();
    const subscriber = subscribeToRevocationTopic({ brokers, topicPrefix: `${prefix}wide.` });
    subscribers.push(subscriber);
    await expect(subscriber.ready()).rejects.toThrow(
      `${wide} has 3 partitions; the revocations topic must have exactly one`,
    );
    expect(subscriber.denyList.isFresh(60_000)).toBe(false);
  });
});
