// `node dist/grantline.js migrate` (the Helm chart's pre-install/pre-upgrade Job): every service's
// event-store schema brought up to date, and the topics created with their partition counts
// (KAFKA_TOPIC_PARTITIONS), before any new pod starts. The services do the same at start, under the
// same advisory lock, so this is an ordering aid, not a requirement; each service still migrates its
// read models itself at start (they belong to its code version).
import { migrate } from '@grantline/event-store';
import { deadLetterTopic, TOPICS } from '@grantline/events';
import { KafkaMessageBus } from '@grantline/message-bus';
import {
  describeStartupFailure,
  kafkaConnection,
  loadDistributedConfig,
  partitionsOf,
} from '@grantline/service-kit';
import { createLogger } from '@grantline/telemetry';
import pg from 'pg';

/** each service's schema (authorization's is `authz`: `authorization` is an SQL keyword) */
const SCHEMAS = ['registry', 'authz', 'token', 'consent', 'introspection'];

try {
  const config = loadDistributedConfig();
  const logger = createLogger({ name: 'migrate' });
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 2 });
  try {
    for (const schema of SCHEMAS) {
      const applied = await migrate(pool, schema);
      console.log(`migrate: ${schema}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}`);
    }
  } finally {
    await pool.end();
  }
  const bus = new KafkaMessageBus({
    brokers: config.KAFKA_BROKERS,
    clientId: 'grantline-migrate',
    logger,
    ...(config.KAFKA_TOPIC_PREFIX && { topicPrefix: config.KAFKA_TOPIC_PREFIX }),
    ...kafkaConnection(config),
  });
  try {
    await bus.ensureTopics(
      Object.values(TOPICS).flatMap((topic) => [
        {
          topic,
          partitions: partitionsOf(config.KAFKA_TOPIC_PARTITIONS, topic),
          compacted: topic === TOPICS.revocations,
        },
        { topic: deadLetterTopic(topic) },
      ]),
    );
  } finally {
    await bus.close();
  }
  console.log('migrate: topics in place');
} catch (error) {
  console.error(describeStartupFailure('migrate', error));
  process.exit(1);
}
