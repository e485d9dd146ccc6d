// A relay in a process of its own, so a test can SIGKILL it at a chosen point.
// FAULT=hang-before-checkpoint: after the first batch is published, print "published <n>" and hang
// before the checkpoint is written (the window a crash must not lose events in).
import { Relay } from '@grantline/event-store';
import { KafkaMessageBus } from '@grantline/message-bus';
import pg from 'pg';
import { pino } from 'pino';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const logger = pino({ level: 'warn' });
const pool = new pg.Pool({ connectionString: env('DATABASE_URL') });
const bus = new KafkaMessageBus({
  brokers: env('KAFKA_BROKERS').split(','),
  clientId: 'relay-process',
  logger,
  topicPrefix: env('TOPIC_PREFIX'),
});
const relay = new Relay({
  pool,
  schema: env('SCHEMA'),
  publisher: bus,
  logger,
  batchSize: Number(process.env.BATCH_SIZE ?? 500),
  ...(process.env.FAULT === 'hang-before-checkpoint' && {
    beforeCheckpoint: async (events) => {
      console.log(`published ${events.length}`);
      await new Promise(() => {});
    },
  }),
});
relay.start();
console.log('started');
