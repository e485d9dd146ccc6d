import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import type { Clock } from '@grantline/clock';
import {
  isConnectionError,
  migrate,
  PostgresEventStore,
  pglitePool,
  Relay,
  relayedThrough,
} from '@grantline/event-store';
import { deadLetterTopic, TOPICS } from '@grantline/events';
import { type KeyValueStore, MemoryKeyValueStore, RedisKeyValueStore } from '@grantline/key-value';
import {
  type ConsumedEvent,
  InProcessMessageBus,
  type KafkaBusOptions,
  KafkaMessageBus,
  type MessageBus,
  type Projection,
  type Reactor,
} from '@grantline/message-bus';
import {
  MemoryRevocationCache,
  RedisRevocationCache,
  type RevocationCache,
} from '@grantline/revocation-cache';
import { type Logger, tracePool } from '@grantline/telemetry';
import pg from 'pg';
import { StartupError } from './config.ts';
import type { ReadinessCheck } from './health.ts';
import { connectRedis } from './redis.ts';
import { projectFromTopics, reactToTopics } from './subscriptions.ts';

/**
 * What every event-sourced service stands on, whichever mode runs it: its schema on a Postgres (a
 * server, or PGlite in process), the event store, the message bus and the relay between them, a
 * key-value store for counters and replay guards; readiness checks and shutdown steps in order.
 * The distributed adapter is `pg` + Kafka + Redis, one per service process; the embedded adapter is
 * one PGlite, one in-process bus and one in-memory key-value store shared by every service.
 */
export interface Runtime {
  /** the service's database (a `pg.Pool`; PGlite behind the same interface in the embedded mode) */
  readonly pool: pg.Pool;
  /** the service's Postgres schema */
  readonly schema: string;
  readonly store: PostgresEventStore;
  readonly bus: MessageBus;
  /** counters, lock-outs and replay guards (Redis, or memory in the embedded mode) */
  readonly kv: KeyValueStore;
  /**
   * The deny-list resource servers check (Redis, or memory in the embedded mode, one shared by every
   * service of the process). Made on first use: a service that never touches it opens no connection.
   */
  revocations(): RevocationCache;
  /** the deployment's prefix of Kafka topics and `kv` keys ('' in the embedded mode) */
  readonly topicPrefix: string;
  readonly readiness: Record<string, ReadinessCheck>;
  /** run in order at shutdown: subscriptions, relay flush, connections */
  readonly shutdown: (() => Promise<unknown>)[];
  /**
   * Keeps a read model of this service up to date from topics: each event applied once, in the
   * transaction that records it (consecutive events of a partition share one; consumer group =
   * `name`), or, for a projection idempotent by itself (`applyRun`), a run in one statement with no
   * record; stopped before the bus closes. Events of types the projection does not handle are
   * passed over without touching the database. `applied` is called once an event's transaction has
   * committed (what the read model now shows may be sent on).
   */
  project(
    name: string,
    topics: readonly string[],
    projection: Projection,
    onCrash: (error: Error) => void,
    options?: { applied?: (event: ConsumedEvent) => void },
  ): Promise<void>;
  /**
   * Runs a reactor from topics (consumer group = `name`): each event of its types handed to it at
   * least once, outside any transaction, so the commands it issues commit on their own; stopped
   * before the bus closes.
   */
  react(
    name: string,
    topics: readonly string[],
    reactor: Reactor,
    onCrash: (error: Error) => void,
  ): Promise<void>;
  /**
   * Read-your-writes for a command whose effect other services project: resolves once the event at
   * `position` is published and every consumer group currently reading `topic` has handled it
   * (bounded by `timeoutMs`; a timeout is logged, not thrown: the write itself has succeeded).
   */
  awaitProjected(position: string, topic: string, timeoutMs?: number): Promise<boolean>;
}

/** What a service asks of its runtime. */
export interface RuntimeSpec {
  /** the service name: its CloudEvents source `/grantline/<name>`, and its Postgres schema by default */
  service: string;
  /** the Postgres schema, when the service name is an SQL keyword (`authorization` is) */
  schema?: string;
  logger: Logger;
  /** the service's clock: the time its events are recorded at (default: the system clock) */
  clock?: Clock | undefined;
}

/** The embedded mode's relay pace (`Relay`'s `minIntervalMs`): at most this much latency added to an event. */
const EMBEDDED_RELAY_PACE_MS = 20;

/** Makes a service's runtime: the one seam between a service module and the mode that runs it. */
export type RuntimeFactory = (spec: RuntimeSpec) => Promise<Runtime>;

interface Bus extends MessageBus {
  awaitSubscribers(topic: string, timeoutMs: number): Promise<boolean>;
}

/** The store, relay, projections and read-your-writes of one schema, on whichever pool and bus. */
const assemble = async (
  spec: RuntimeSpec,
  parts: {
    pool: pg.Pool;
    bus: Bus;
    kv: KeyValueStore;
    revocations: () => RevocationCache;
    topicPrefix: string;
    readiness: Record<string, ReadinessCheck>;
    /** how many statements the database runs at once (PGlite: one; a server: the store's default) */
    concurrentWrites?: number;
    /** the least time between two drains of a relay (default: the relay's) */
    relayMinIntervalMs?: number;
    /** closes what this runtime alone owns, after its relay flushed */
    close: (() => Promise<unknown>)[];
  },
): Promise<Runtime> => {
  const { pool, bus } = parts;
  const schema = spec.schema ?? spec.service;
  await migrate(pool, schema);
  const relay = new Relay({
    pool,
    schema,
    publisher: bus,
    logger: spec.logger,
    ...(parts.relayMinIntervalMs !== undefined && { minIntervalMs: parts.relayMinIntervalMs }),
  });
  const store = new PostgresEventStore({
    pool,
    schema,
    source: `/grantline/${spec.service}`,
    clock: spec.clock,
    relay,
    ...(parts.concurrentWrites !== undefined && { concurrentWrites: parts.concurrentWrites }),
  });
  relay.start();
  const subscriptions: { stop(): Promise<void> }[] = [];
  const shutdown = [
    async () => {
      await Promise.all(subscriptions.map((sub) => sub.stop()));
    },
    () => relay.stop({ flush: true }),
    ...parts.close,
  ];
  return {
    pool,
    schema,
    store,
    bus,
    kv: parts.kv,
    revocations: parts.revocations,
    topicPrefix: parts.topicPrefix,
    readiness: parts.readiness,
    shutdown,
    project: async (name, topics, projection, onCrash, options = {}) => {
      subscriptions.push(
        await projectFromTopics(bus, pool, schema, { name, topics, projection, onCrash, ...options }),
      );
    },
    react: async (name, topics, reactor, onCrash) => {
      subscriptions.push(await reactToTopics(bus, { name, topics, reactor, onCrash }));
    },
    awaitProjected: async (position, topic, timeoutMs = 5_000) => {
      const deadline = Date.now() + timeoutMs;
      try {
        const done =
          (await relayedThrough(pool, schema, position, { timeoutMs })) &&
          (await bus.awaitSubscribers(topic, Math.max(0, deadline - Date.now())));
        if (!done) spec.logger.warn({ position, topic, timeoutMs }, 'a write was not projected in time');
        return done;
      } catch (error) {
        // the write has committed: its answer (a new client's secret) must reach the caller regardless
        spec.logger.warn({ err: error, position, topic }, 'could not tell whether a write was projected');
        return false;
      }
    },
  };
};

export interface DistributedOptions {
  databaseUrl: string;
  kafkaBrokers: readonly string[];
  topicPrefix?: string;
  /** Redis for counters and replay guards; a service that needs none runs without */
  redisUrl?: string | undefined;
  poolSize?: number;
  /** partitions of a contract topic when this service creates it (default 1) */
  topicPartitions?: (topic: string) => number;
  /** TLS and SASL to the brokers */
  ssl?: KafkaBusOptions['ssl'];
  sasl?: KafkaBusOptions['sasl'];
}

/** the database a Postgres URL names (a span attribute), if it names one */
const databaseName = (url: string): string | undefined => {
  try {
    return decodeURIComponent(new URL(url).pathname.slice(1)) || undefined;
  } catch {
    return undefined;
  }
};

/**
 * The distributed adapter: each service its own `pg` pool on a Postgres server, its own Kafka client
 * with the contract's topics, and its own Redis connection.
 */
export const distributedRuntime =
  (options: DistributedOptions): RuntimeFactory =>
  async (spec) => {
    const { logger } = spec;
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: options.poolSize ?? 20 });
    pool.on('error', (error) => logger.warn({ err: error }, 'idle Postgres connection failed'));
    // A connection a caller holds (a transaction between two queries, the relay's LISTEN) that Postgres
    // ends (a restart: 57P01) emits 'error' while the pool is not listening: without a listener of its
    // own that is an uncaught exception, and the process dies. The caller's next query fails instead.
    pool.on('connect', (client) =>
      client.on('error', (error) => logger.warn({ err: error }, 'Postgres connection failed')),
    );
    tracePool(pool as unknown as Parameters<typeof tracePool>[0], databaseName(options.databaseUrl));
    await pool.query('SELECT 1').catch(async (error: unknown) => {
      await pool.end().catch(() => {});
      throw unreachable(error, 'Postgres', safeHost(options.databaseUrl), 'DATABASE_URL');
    });
    const bus = new KafkaMessageBus({
      brokers: options.kafkaBrokers,
      clientId: `grantline-${spec.service}`,
      logger,
      ...(options.topicPrefix && { topicPrefix: options.topicPrefix }),
      ...(options.ssl !== undefined && { ssl: options.ssl }),
      ...(options.sasl && { sasl: options.sasl }),
    });
    await bus
      .ensureTopics(
        Object.values(TOPICS).flatMap((topic) => [
          {
            topic,
            partitions: options.topicPartitions?.(topic) ?? 1,
            compacted: topic === TOPICS.revocations,
          },
          { topic: deadLetterTopic(topic) },
        ]),
      )
      .catch(async (error: unknown) => {
        await pool.end().catch(() => {});
        throw unreachable(error, 'Kafka', options.kafkaBrokers.join(','), 'KAFKA_BROKERS');
      });
    const admin = bus.kafka.admin();
    await admin.connect();
    const redis = options.redisUrl ? connectRedis(options.redisUrl, logger) : undefined;
    let revocations: RevocationCache | undefined;
    const revocationCache = () => {
      revocations ??= options.redisUrl
        ? new RedisRevocationCache({
            url: options.redisUrl,
            prefix: `grantline:${options.topicPrefix ?? ''}revoked:`,
          })
        : new MemoryRevocationCache();
      return revocations;
    };
    return assemble(spec, {
      pool,
      bus,
      kv: redis ? new RedisKeyValueStore(redis) : new MemoryKeyValueStore(),
      revocations: revocationCache,
      topicPrefix: options.topicPrefix ?? '',
      readiness: {
        postgres: () => pool.query('SELECT 1'),
        kafka: () => admin.describeCluster(),
        ...(redis && { redis: () => redis.ping() }),
      },
      close: [
        () => admin.disconnect(),
        () => bus.close(),
        () => pool.end(),
        ...(redis ? [() => redis.quit()] : []),
        async () => revocations?.close(),
      ],
    });
  };

export interface EmbeddedOptions {
  /** where PGlite keeps its files; none: in memory (lost at exit) */
  dataDir?: string | undefined;
  logger: Logger;
}

export interface EmbeddedHost {
  /** the runtimes of every service in this process, on the one database, bus and key-value store */
  runtime: RuntimeFactory;
  readiness: Record<string, ReadinessCheck>;
  /** after every service stopped: the bus, then the database */
  close(): Promise<void>;
}

/**
 * The embedded adapter: every service in one process on one PGlite database (a schema each, as on a
 * shared Postgres server), one in-process bus whose log and consumer offsets live in that database
 * (at least once, in order per topic, a restart resumes each group), and one in-memory key-value
 * store (counters, lock-outs and replay guards do not outlive the process) and one in-memory
 * revocation cache (the introspection service rebuilds it from its facts at every start).
 */
export const embeddedHost = async (options: EmbeddedOptions): Promise<EmbeddedHost> => {
  if (options.dataDir) {
    try {
      mkdirSync(options.dataDir, { recursive: true });
    } catch (error) {
      throw new StartupError(
        `cannot create the data directory ${options.dataDir} (GRANTLINE_DATA_DIR): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}. Point GRANTLINE_DATA_DIR at a directory this user can write.`,
      );
    }
  }
  const db = await PGlite.create(options.dataDir ? { dataDir: options.dataDir } : {}).catch(
    (error: unknown) => {
      const e = error as NodeJS.ErrnoException;
      throw new StartupError(
        `cannot open the embedded database in ${options.dataDir ?? '(memory)'} (GRANTLINE_DATA_DIR): ${e.code ?? e.message}. Check the directory is writable and not used by another Grantline process.`,
      );
    },
  );
  const pool = pglitePool(db);
  const bus = new InProcessMessageBus({ pool, logger: options.logger });
  await bus.ensureTopics([{ topic: TOPICS.revocations, compacted: true }]);
  const kv = new MemoryKeyValueStore();
  const revocations = new MemoryRevocationCache();
  const readiness = { database: () => pool.query('SELECT 1') };
  return {
    readiness,
    runtime: (spec) =>
      assemble(spec, {
        pool,
        bus,
        kv,
        revocations: () => revocations,
        topicPrefix: '',
        readiness,
        // PGlite runs one statement at a time, on this thread: writes overlapped would only wait on
        // each other, and a relay drain (two statements and the bus's insert, ~3 ms) per commit would
        // take most of the process; paced, one drain carries what 20 ms of commits wrote
        concurrentWrites: 1,
        relayMinIntervalMs: EMBEDDED_RELAY_PACE_MS,
        close: [],
      }),
    close: async () => {
      await revocations.close();
      await bus.close();
      await db.close();
    },
  };
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
