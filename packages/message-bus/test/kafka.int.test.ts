import { randomUUID } from 'node:crypto';
import { migrate } from '@grantline/event-store';
import { deadLetterTopic, TOPICS } from '@grantline/events';
import { createTestDatabase, eventually, type TestDatabase, uniqueName } from '@grantline/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KafkaMessageBus } from '../src/kafka.ts';
import { messageBusContract, recorded } from './contract.ts';
import { pacingContract } from './pacing-contract.ts';

let bus: KafkaMessageBus;
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase(inject('infra'));
  await migrate(db.pool, 'consent');
  bus = new KafkaMessageBus({
    brokers: inject('infra').kafkaBrokers,
    clientId: 'contract',
    logger: pino({ level: 'silent' }),
    topicPrefix: `${uniqueName('mb')}.`,
  });
  await bus.ensureTopics([
    { topic: TOPICS.grants },
    { topic: deadLetterTopic(TOPICS.grants) },
    { topic: TOPICS.tokens },
    { topic: TOPICS.revocations, compacted: true },
  ]);
});
afterAll(async () => {
  await bus?.close();
  await db?.drop();
});

messageBusContract(
  'kafka',
  () => bus,
  () => ({ pool: db.pool, schema: 'consent' }),
);

describe('Kafka publisher', () => {
  it('publishes with an idempotent producer: every record batch carries a producer id and sequence numbers', async () => {
    const streamId = `grant-${uniqueName('idem')}`;
    await bus.publish([recorded(streamId, 1), recorded(streamId, 2)]);
    await bus.publish([recorded(streamId, 3)]);
    // read the records back raw: kafkajs exposes each record's batch header as `batchContext`
    const consumer = bus.kafka.consumer({ groupId: uniqueName('idem-reader') });
    await consumer.connect();
    const contexts: { producerId: string; firstSequence: number }[] = [];
    try {
      await consumer.subscribe({ topic: bus.topic(TOPICS.grants), fromBeginning: true });
      await new Promise<void>((done, fail) => {
        const timer = setTimeout(() => fail(new Error('the published events were not read back')), 20_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            if (message.key?.toString() !== streamId) return;
            contexts.push((message as unknown as { batchContext: (typeof contexts)[number] }).batchContext);
            if (contexts.length === 3) {
              clearTimeout(timer);
              done();
            }
          },
        });
      });
    } finally {
      await consumer.disconnect();
    }
    // a producer that is not idempotent writes producer id -1 and sequence -1
    const producerIds = new Set(contexts.map((c) => String(c.producerId)));
    expect(producerIds.size).toBe(1);
    expect(Number([...producerIds][0])).toBeGreaterThanOrEqual(0);
    // the second batch continues the partition's sequence where the first ended
    expect(contexts.map((c) => c.firstSequence)).toEqual([
      contexts[0]!.firstSequence,
      contexts[0]!.firstSequence,
      contexts[0]!.firstSequence + 2,
    ]);
  }, 60_000);
});

describe('Kafka consumer offsets', () => {
  const revoked = (clientId: string, n: number) => ({
    ...recorded(`token-${clientId}-${n}`, 1),
    type: 'TokenRevoked',
    data: { tokenId: `jti-${n}`, tokenType: 'access_token', clientId },
  });

  it('commits the tokens topic at intervals while running, once it goes quiet, and at once when it stops', async () => {
    // a long interval, so that the steps below fit inside one whatever the machine's speed
    const intervalMs = 4_000;
    const lazy = new KafkaMessageBus({
      brokers: inject('infra').kafkaBrokers,
      clientId: 'lazy-commit',
      logger: pino({ level: 'silent' }),
      topicPrefix: bus.topic(''),
      unawaitedCommitIntervalMs: intervalMs,
    });
    const admin = lazy.kafka.admin();
    await admin.connect();
    const clientId = `client-${randomUUID()}`;
    const groupId = uniqueName('lazy-commit');
    /** the group's committed offset: the offset of the next message it will read */
    const committed = async () => {
      // the bus namespaces groups as it does topics
      const [offsets] = await admin.fetchOffsets({
        groupId: lazy.topic(groupId),
        topics: [lazy.topic(TOPICS.tokens)],
      });
      return Number(offsets?.partitions[0]?.offset ?? -1);
    };
    const seen: string[] = [];
    const subscribe = () =>
      lazy.subscribe({
        groupId,
        topics: [TOPICS.tokens],
        onCrash: (e) => {
          throw e;
        },
        handle: async (e) => {
          if ((e.data as { clientId?: string }).clientId === clientId) seen.push(e.subject);
        },
      });
    const handled = (n: number) =>
      eventually(() => (seen.length === n ? true : undefined), { what: `${n} events` });
    const first = await subscribe();
    try {
      // the first batch commits at once (nothing was committed before)
      await lazy.publish([revoked(clientId, 1)]);
      await handled(1);
      const firstCommitted = Date.now();
      await eventually(async () => ((await committed()) === 1 ? true : undefined), {
        what: 'the first event committed',
      });
      // the next, within the interval: handled, not committed yet...
      await lazy.publish([revoked(clientId, 2)]);
      await handled(2);
      const pending = await committed();
      if (Date.now() - firstCommitted < intervalMs - 500) expect(pending).toBe(1);
      // ...until the interval has passed, with the topic quiet
      await eventually(async () => ((await committed()) === 2 ? true : undefined), {
        what: 'the second event committed by the timer',
        timeoutMs: intervalMs + 5_000,
      });
      // within the next interval, a stop commits what it handled
      await lazy.publish([revoked(clientId, 3)]);
      await handled(3);
      await first.stop();
      expect(await committed()).toBe(3);

      const second = await subscribe();
      try {
        await lazy.publish([revoked(clientId, 4)]);
        await handled(4);
        expect(seen).toEqual([1, 2, 3, 4].map((n) => `token-${clientId}-${n}`));
      } finally {
        await second.stop();
      }
    } finally {
      await admin.disconnect();
      await lazy.close();
    }
  }, 60_000);

  it('read-your-writes waits for a live group subscribed to the topic, found by its subscription', async () => {
    const groupId = uniqueName('ryw');
    const marker = `grant-${randomUUID()}`;
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const subscription = await bus.subscribe({
      groupId,
      topics: [TOPICS.grants],
      onCrash: (e) => {
        throw e;
      },
      handle: async (e) => {
        if (e.subject === marker) await held;
      },
    });
    try {
      // the group has joined and committed past what the topic held (it is a reader, and caught up)
      const warm = recorded(`grant-${randomUUID()}`, 1);
      await bus.publish([warm]);
      expect(await bus.awaitSubscribers(TOPICS.grants, 20_000, 'contract')).toBe(true);
      // a write its handler holds: not caught up until released
      await bus.publish([recorded(marker, 1)]);
      expect(await bus.awaitSubscribers(TOPICS.grants, 1_500, 'contract')).toBe(false);
      setTimeout(release, 500);
      expect(await bus.awaitSubscribers(TOPICS.grants, 20_000, 'contract')).toBe(true);
    } finally {
      release();
      await subscription.stop();
    }
  }, 60_000);

  it('read-your-writes does not wait for a group that stopped reading the topic, whatever offsets it kept there', async () => {
    const stale = uniqueName('stale');
    const admin = bus.kafka.admin();
    await admin.connect();
    let subscription: { stop(): Promise<void> } | undefined;
    try {
      // the topic holds something, and the group's old offset there is behind it
      await bus.publish([recorded(`grant-${randomUUID()}`, 1)]);
      await admin.setOffsets({
        groupId: bus.topic(stale),
        topic: bus.topic(TOPICS.grants),
        partitions: [{ partition: 0, offset: '0' }],
      });
      subscription = await bus.subscribe({
        groupId: stale,
        topics: [TOPICS.tokens],
        fromBeginning: false,
        onCrash: (e) => {
          throw e;
        },
        handle: async () => {},
      });
      // in a rebalance it may be waited for (its subscription unknown); once stable, not
      expect(await bus.awaitSubscribers(TOPICS.grants, 15_000, 'contract')).toBe(true);
    } finally {
      await subscription?.stop();
      await admin.disconnect();
    }
  }, 60_000);
});

// after the offsets tests, which count the tokens topic's offsets from its first message
pacingContract('kafka', () => bus);
