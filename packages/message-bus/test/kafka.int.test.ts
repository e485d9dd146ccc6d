import { deadLetterTopic, TOPICS } from '@grantline/events';
import { uniqueName } from '@grantline/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, inject } from 'vitest';
import { KafkaMessageBus } from '../src/kafka.ts';
import { messageBusContract } from './contract.ts';

let bus: KafkaMessageBus;
beforeAll(async () => {
  bus = new KafkaMessageBus({
    brokers: inject('infra').kafkaBrokers,
    clientId: 'contract',
    logger: pino({ level: 'silent' }),
    topicPrefix: `${uniqueName('mb')}.`,
  });
  await bus.ensureTopics([{ topic: TOPICS.grants }, { topic: deadLetterTopic(TOPICS.grants) }]);
});
afterAll(() => bus?.close());

messageBusContract('kafka', () => bus);
