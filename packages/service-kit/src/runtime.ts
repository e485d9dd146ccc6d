import {
  isConnectionError,
  migrate,
  PostgresEventStore,
  Relay,
  relayedThrough,
} from '@grantline/event-store';
import { deadLetterTopic, TOPICS } from '@grantline/events';
import { type ConsumedEvent, idempotentProjection, KafkaMessageBus } from '@grantline/message-bus';
import type { Logger } from '@grantline/telemetry';
import pg from 'pg';
import { StartupError } from './config.ts';
import type { ReadinessCheck } from './health.ts';

export interface RuntimeOptions {
  /** the service name: its CloudEvents source `/grantline/<name>`, and its Postgres schema by default */
  service: string;
  /** the Postgres schema, when the service name is an SQL keyword (`authorization` is) */
  schema?: string;
  databaseUrl: string;
  kafkaBrokers: readonly string[];
  topicPrefix?: string;
  logger: Logger;
  poolSize?: number;
}

/**
 * What every event-sourced service stands on: a pool, its migrated schema, the event store, the Kafka
 * bus with the contract's topics, and the relay between them; plus readiness checks and shutdown
 * steps in the right order (relay flushed before the bus closes, the pool last).
 */
export const createRuntime = async (options: RuntimeOptions) => {
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize ?? 20 });
  pool.on('error', (error) => options.logger.warn({ err: error }, 'idle Postgres connection failed'));
  // A connection a caller holds (a transaction between two queries, the relay's LISTEN) that Postgres
  // ends (a restart: 57P01) emits 'error' while the pool is not listening: without a listener of its
  // own that is an uncaught exception, and the process dies. The caller's next query fails instead.
  pool.on('connect', (client) =>
    client.on('error', (error) => options.logger.warn({ err: error }, 'Postgres connection failed')),
  );
  const schema = options.schema ?? options.service;
  await migrate(pool, schema).catch((error: unknown) => {
    throw unreachable(error, 'Postgres', safeHost(options.databaseUrl), 'DATABASE_URL');
  });
  const store = new PostgresEventStore({ pool, schema, source: `/grantline/${options.service}` });
  const bus = new KafkaMessageBus({
    brokers: options.kafkaBrokers,
    clientId: `grantline-${options.service}`,
    logger: options.logger,
    ...(options.topicPrefix && { topicPrefix: options.topicPrefix }),
  });
  await bus
    .ensureTopics(
      Object.values(TOPICS).flatMap((topic) => [
        { topic, compacted: topic === TOPICS.revocations },
        { topic: deadLetterTopic(topic) },
      ]),
    )
    .catch((error: unknown) => {
      throw unreachable(error, 'Kafka', options.kafkaBrokers.join(','), 'KAFKA_BROKERS');
    });
  const relay = new Relay({ pool, schema, publisher: bus, logger: options.logger });
  relay.start();
  const admin = bus.kafka.admin();
  await admin.connect();
  const readiness: Record<string, ReadinessCheck> = {
    postgres: () => pool.query('SELECT 1'),
    kafka: () => admin.describeCluster(),
  };
  const subscriptions: { stop(): Promise<void> }[] = [];
  const shutdown = [
    async () => {
      await Promise.all(subscriptions.map((sub) => sub.stop()));
    },
    () => relay.stop({ flush: true }),
    () => admin.disconnect(),
    () => bus.close(),
    () => pool.end(),
  ];
  /**
   * Keeps a read model of this service up to date from topics: each event applied once, in the
   * transaction that records it (consumer group = `name`); stopped before the bus closes. With
   * `types`, events of other types are passed over without touching the database (a projection
   * that reacts to one event type of a busy topic then costs nothing for the rest).
   */
  const project = async (
    name: string,
    topics: readonly string[],
    apply: (event: ConsumedEvent, tx: pg.PoolClient) => Promise<void>,
    onCrash: (error: Error) => void,
    options: { types?: readonly string[] } = {},
  ) => {
    const idempotent = idempotentProjection({ pool, schema, consumer: name, project: apply });
    const types = options.types && new Set(options.types);
    subscriptions.push(
      await bus.subscribe({
        groupId: name,
        topics,
        onCrash,
        handle: types
          ? (event) => (types.has(event.type) ? idempotent(event) : Promise.resolve())
          : idempotent,
      }),
    );
  };
  /**
   * Read-your-writes for a command whose effect other services project: resolves once the event at
   * `position` is on Kafka and every consumer group currently reading `topic` has committed past it
   * (bounded by `timeoutMs`; a timeout is logged, not thrown: the write itself has succeeded).
   */
  const awaitProjected = async (position: string, topic: string, timeoutMs = 5_000): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    try {
      const done =
        (await relayedThrough(pool, schema, position, { timeoutMs })) &&
        (await bus.awaitSubscribers(topic, Math.max(0, deadline - Date.now())));
      if (!done) options.logger.warn({ position, topic, timeoutMs }, 'a write was not projected in time');
      return done;
    } catch (error) {
      // the write has committed: its answer (a new client's secret) must reach the caller regardless
      options.logger.warn({ err: error, position, topic }, 'could not tell whether a write was projected');
      return false;
    }
  };
  return { pool, schema, store, bus, relay, readiness, shutdown, project, awaitProjected };
};

/** host:port of a connection URL, without credentials (what a start-up message may show) */
const safeHost = (url: string): string => {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}`;
  } catch {
    return '(unparsable URL)';
  }
};

/** A dependency that cannot be reached at start-up, said in one line; other errors pass through. */
const unreachable = (error: unknown, what: string, where: string, variable: string): unknown => {
  const e = error as { code?: string; message?: string; name?: string };
  const connection =
    isConnectionError(error) ||
    /ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ECONNREFUSED/.test(`${e.code} ${e.message}`) ||
    e.name === 'KafkaJSNumberOfRetriesExceeded' ||
    e.name === 'KafkaJSConnectionError' ||
    e.name === 'KafkaJSNonRetriableError';
  if (!connection) return error;
  return new StartupError(
    `cannot reach ${what} at ${where} (${variable}): ${e.code ?? e.message ?? e.name}. Start it, or point ${variable} at one that runs.`,
  );
};

export type Runtime = Awaited<ReturnType<typeof createRuntime>>;
