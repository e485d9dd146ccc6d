// A consumer whose handler always fails with a retriable error (its database is "down"), under the
// services' default crash policy: it must end the process with a non-zero code, not hang.
import { TOPICS } from '@grantline/events';
import { KafkaMessageBus } from '@grantline/message-bus';
import { exitOnCrash } from '@grantline/service-kit';
import { createLogger } from '@grantline/telemetry';

const logger = createLogger({ name: 'crashing-consumer', level: 'warn' });
const bus = new KafkaMessageBus({
  brokers: process.env.KAFKA_BROKERS!.split(','),
  clientId: 'crashing-consumer',
  logger,
  topicPrefix: process.env.TOPIC_PREFIX!,
});
await bus.subscribe({
  groupId: 'crashing-consumer',
  topics: [TOPICS.grants],
  onCrash: exitOnCrash(logger),
  handle: async () => {
    throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { retriable: true });
  },
});
console.log('subscribed');
