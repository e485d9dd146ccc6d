import { migrate } from '@grantline/event-store';
import { deadLetterTopic, TOPICS } from '@grantline/events';
import { createTestDatabase, type TestDatabase, uniqueName } from '@grantline/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, inject } from 'vitest';
import { KafkaMessageBus } from '../src/kafka.ts';
import { messageBusContract } from './contract.ts';

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
