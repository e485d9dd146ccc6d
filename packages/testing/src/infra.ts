import { Redis } from 'ioredis';
import pg from 'pg';
import {
  dockerAvailable,
  javaAvailable,
  type KafkaBroker,
  type LocalProcess,
  onPath,
  type PostgresServer,
  postgresAvailable,
  type RestartableRedis,
  startLocalKafka,
  startLocalPostgres,
  startLocalRedis,
} from './processes.ts';

export interface Infrastructure {
  /** an admin URL: tests create their own databases through it */
  databaseUrl: string;
  redisUrl: string;
  kafkaBrokers: string[];
  /** how each was found, printed once so a run says what it tested against */
  origin: { postgres: string; redis: string; kafka: string };
}

const postgresAnswers = async (url: string): Promise<boolean> => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_500 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
};

const redisAnswers = async (url: string): Promise<boolean> => {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1_500,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
};

type Started = { stop(): Promise<void> };

/**
 * Finds real Postgres, Redis and Kafka for the test run, in this order: the environment
 * (`DATABASE_URL`, `REDIS_URL`, `KAFKA_BROKERS`); containers through testcontainers when a Docker
 * engine answers; else local processes (the servers already running on the default ports, or ones
 * started from Debian's packages; Kafka 3.9.1 from Maven Central jars). What it started, `stop` stops.
 * `steadyState`: a Kafka it starts from jars runs with the JVM's full tiered compilation, as a
 * production broker does (the benchmarks); without it, the client compiler only, which starts sooner
 * (the tests).
 */
export const resolveInfrastructure = async (
  options: { steadyState?: boolean } = {},
): Promise<{
  infra: Infrastructure;
  stop: () => Promise<void>;
}> => {
  const started: Started[] = [];
  const docker =
    !(process.env.DATABASE_URL && process.env.REDIS_URL && process.env.KAFKA_BROKERS) && dockerAvailable();
  const containers = docker ? await import('./containers.ts') : undefined;
  const take = <T extends Started>(s: T): T => {
    started.push(s);
    return s;
  };
  try {
    // Postgres and Redis first: starting Kafka blocks this process while its script runs.
    const [postgres, redis] = await Promise.all([
      (async () => {
        if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, origin: 'DATABASE_URL' };
        if (containers)
          return { url: take(await containers.startPostgresContainer()).url, origin: 'testcontainers' };
        const local = 'postgres://postgres@127.0.0.1:5432/postgres';
        if (await postgresAnswers(local)) return { url: local, origin: 'running server on 127.0.0.1:5432' };
        return { url: take(await startLocalPostgres()).url, origin: 'started from Debian packages' };
      })(),
      (async () => {
        if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, origin: 'REDIS_URL' };
        if (containers)
          return { url: take(await containers.startRedisContainer()).url, origin: 'testcontainers' };
        const local = 'redis://127.0.0.1:6379';
        if (await redisAnswers(local)) return { url: local, origin: 'running server on 127.0.0.1:6379' };
        return { url: take(await startLocalRedis()).url, origin: 'started from Debian packages' };
      })(),
    ]);
    const kafka = await (async () => {
      if (process.env.KAFKA_BROKERS)
        return { brokers: process.env.KAFKA_BROKERS.split(','), origin: 'KAFKA_BROKERS' };
      if (containers)
        return { brokers: [take(await containers.startKafkaContainer()).url], origin: 'testcontainers' };
      if (!javaAvailable())
        throw new Error('no Kafka: set KAFKA_BROKERS, run a Docker engine, or install Java 17 and Maven');
      const broker = take(await startLocalKafka(options));
      return { brokers: broker.brokers, origin: 'Apache Kafka 3.9.1 jars, local process' };
    })();
    return {
      infra: {
        databaseUrl: postgres.url,
        redisUrl: redis.url,
        kafkaBrokers: kafka.brokers,
        origin: { postgres: postgres.origin, redis: redis.origin, kafka: kafka.origin },
      },
      stop: async () => {
        await Promise.allSettled(started.map((s) => s.stop()));
      },
    };
  } catch (error) {
    await Promise.allSettled(started.map((s) => s.stop()));
    throw error;
  }
};

/**
 * A broker of the test's own, for tests that stop it (outages). Local process when Java and Maven are
 * there, else a container; undefined when neither is possible (the caller skips with a reason).
 */
export const startPrivateKafka = async (): Promise<KafkaBroker | undefined> => {
  if (javaAvailable()) return startLocalKafka();
  if (dockerAvailable()) return (await import('./containers.ts')).startPausableKafkaContainer();
  return undefined;
};

/**
 * A Postgres of the test's own, for tests that restart it (never the shared one). A local process
 * from Debian's packages; undefined where they are missing (the caller skips with a reason).
 */
export const startPrivatePostgres = async (): Promise<PostgresServer | undefined> =>
  postgresAvailable() ? startLocalPostgres() : undefined;

/**
 * A Redis of the test's own, for tests that stop it (never the shared one): a local `redis-server`;
 * undefined where it is missing (the caller skips with a reason).
 */
export const startPrivateRedis = async (): Promise<RestartableRedis | undefined> =>
  onPath('redis-server') ? startLocalRedis() : undefined;

export type { KafkaBroker, LocalProcess, PostgresServer, RestartableRedis };
