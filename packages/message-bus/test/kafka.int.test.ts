import { migrate } from '@grantline/event-store';
import { deadLetterTopic, TOPICS } from '@grantline/events';
import { createTestDatabase, type TestDatabase, uniqueName } from '@grantline/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KafkaMessageBus } from '../src/kafka.ts';
import { messageBusContract, recorded } from './contract.ts';

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
