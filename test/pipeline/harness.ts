import { migrate, PostgresEventStore, Relay, type RelayOptions } from '@grantline/event-store';
import { deadLetterTopic, type GrantEvent, TOPICS } from '@grantline/events';
import { type ConsumedEvent, decodeEvent, KafkaMessageBus } from '@grantline/message-bus';
import { createTestDatabase, eventually, type Infrastructure, uniqueName } from '@grantline/testing';
import { pino } from 'pino';

export const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export const grantCreated = (grantId: string): GrantEvent => ({
  type: 'GrantCreated',
  data: {
    grantId,
    subject: 'user-1',
    clientId: 'client-1',
    organisations: ['org-1'],
    scopes: ['accounting.read'],
  },
});
export const orgConnected = (grantId: string, organisationId: string): GrantEvent => ({
  type: 'OrganisationConnected',
  data: { grantId, organisationId },
});

export const ALL_TOPICS = Object.values(TOPICS).flatMap((t) => [{ topic: t }, { topic: deadLetterTopic(t) }]);

/** One service's pipeline over real Postgres and Kafka: its own database, schema and topic prefix. */
export const createPipeline = async (infra: Infrastructure, brokers = infra.kafkaBrokers) => {
  const db = await createTestDatabase(infra, 20);
  const schema = 'consent';
  await migrate(db.pool, schema);
  const store = new PostgresEventStore({ pool: db.pool, schema, source: '/grantline/consent' });
  const topicPrefix = `${uniqueName('p')}.`;
  const bus = new KafkaMessageBus({
    brokers,
    clientId: 'test',
    logger,
    topicPrefix,
    publishTimeoutMs: 2_000,
  });
  await bus.ensureTopics(ALL_TOPICS);
  const relays: Relay[] = [];
  const relay = (options: Partial<RelayOptions> = {}) => {
    const r = new Relay({ pool: db.pool, schema, publisher: bus, logger, pollIntervalMs: 200, ...options });
    relays.push(r);
    return r;
  };
  return {
    db,
    schema,
    store,
    bus,
    topicPrefix,
    relay,
    /** everything on a topic so far, decoded, read by a fresh consumer group from the beginning */
    stopRelays: async () => {
      await Promise.all(relays.splice(0).map((r) => r.stop()));
    },
    readTopic: (logical: string, expected: number, timeoutMs = 60_000) =>
      readTopic(bus, logical, expected, timeoutMs),
    close: async () => {
      await Promise.all(relays.map((r) => r.stop()));
      await bus.close();
      await db.drop();
    },
  };
};

export const readTopic = async (
  bus: KafkaMessageBus,
  logical: string,
  expected: number,
  timeoutMs: number,
): Promise<ConsumedEvent[]> => {
  const consumer = bus.kafka.consumer({ groupId: uniqueName('reader'), maxWaitTimeInMs: 100 });
  const seen: ConsumedEvent[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: bus.topic(logical), fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) seen.push(decodeEvent(batch.topic, batch.partition, m));
      },
    });
    await eventually(() => (new Set(seen.map((e) => e.id)).size >= expected ? true : undefined), {
      timeoutMs,
      what: `${expected} distinct events on ${logical} (have ${new Set(seen.map((e) => e.id)).size})`,
    });
    return seen;
  } finally {
    await consumer.disconnect();
  }
};

/** Asserts each stream's events arrived in version order 1..n, ignoring redeliveries; returns the count. */
export const assertStreamOrder = (events: readonly ConsumedEvent[]): Map<string, number> => {
  const next = new Map<string, number>();
  const ids = new Set<string>();
  for (const e of events) {
    if (ids.has(e.id)) continue; // at-least-once: a duplicate is allowed
    ids.add(e.id);
    const expected = (next.get(e.subject) ?? 0) + 1;
    if (e.streamVersion !== expected) {
      throw new Error(`stream ${e.subject}: got version ${e.streamVersion}, expected ${expected}`);
    }
    next.set(e.subject, expected);
  }
  return next;
};
