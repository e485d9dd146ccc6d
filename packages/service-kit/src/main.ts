import cluster from 'node:cluster';
import type { z } from 'zod';
import { ConfigError, type DistributedConfig, distributedConfigSchema, loadConfig } from './config.ts';
import { kafkaConfigProblems, kafkaConnection, partitionsOf } from './kafka-config.ts';
import { distributedRuntime, type RuntimeFactory } from './runtime.ts';
import { type RunningService, stopOnSignals } from './service.ts';

const isStartupFailure = (error: unknown): error is Error =>
  error instanceof ConfigError || (error as { startup?: unknown } | undefined)?.startup === true;

/** What a start-up failure says: its own message when it has one for operators, else a short one. */
export const describeStartupFailure = (name: string, error: unknown): string => {
  if (isStartupFailure(error)) return `${name}: ${error.message}`;
  const { code, message } = error as { code?: string; message?: string };
  return `${name}: could not start: ${message ?? String(error)}${code ? ` (${code})` : ''}`;
};

/** The distributed runtime its settings describe. */
export const runtimeFromConfig = (config: DistributedConfig): RuntimeFactory =>
  distributedRuntime({
    databaseUrl: config.DATABASE_URL,
    kafkaBrokers: config.KAFKA_BROKERS,
    topicPrefix: config.KAFKA_TOPIC_PREFIX,
    redisUrl: config.REDIS_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    topicPartitions: (topic) => partitionsOf(config.KAFKA_TOPIC_PARTITIONS, topic),
    ...kafkaConnection(config),
  });

/**
 * The distributed settings of a service: Postgres, Kafka and, when `needsRedis`, Redis are required.
 * Throws a ConfigError naming each bad variable.
 */
export const loadDistributedConfig = (
  env: Record<string, string | undefined> = process.env,
  options: { needsRedis?: boolean } = {},
): DistributedConfig => {
  const config = loadConfig(distributedConfigSchema, env);
  const problems = kafkaConfigProblems(config);
  if (options.needsRedis && !config.REDIS_URL)
    problems.unshift('REDIS_URL is required (must be a redis:// URL)');
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
};

/** Every problem of several schemas over one environment, in one ConfigError. */
const loadBoth = <A, B>(first: () => A, second: () => B): [A, B] => {
  const problems: string[] = [];
  const attempt = <T>(load: () => T): T | undefined => {
    try {
      return load();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
      return undefined;
    }
  };
  const a = attempt(first);
  const b = attempt(second);
  if (problems.length > 0) throw new ConfigError(problems);
  return [a as A, b as B];
};

/**
 * A service's process entry point in the distributed mode: parse the environment once (the service's
 * settings and where its Postgres, Kafka and Redis are), start, stop on SIGTERM/SIGINT. A bad
 * configuration prints every problem by variable name and exits 1; any other failure to start prints
 * one line naming it (and what to do, where that is known) and exits 1, never a stack trace.
 */
export const runServiceMain = async <S extends z.ZodType>(
  name: string,
  schema: S,
  start: (config: z.infer<S>, runtime: RuntimeFactory) => Promise<Pick<RunningService, 'stop'>>,
  options: { needsRedis?: boolean } = {},
): Promise<void> => {
  try {
    const [config, distributed] = loadBoth(
      () => loadConfig(schema),
      () => loadDistributedConfig(process.env, options),
    );
    if (distributed.GRANTLINE_WORKERS > 1 && cluster.isPrimary)
      return superviseWorkers(name, distributed.GRANTLINE_WORKERS);
    stopOnSignals(await start(config, runtimeFromConfig(distributed)));
  } catch (error) {
    console.error(describeStartupFailure(name, error));
    process.exit(1);
  }
};

/**
 * GRANTLINE_WORKERS > 1: this process serves nothing itself. It forks that many workers, each the
 * whole service (the cluster shares their listening ports, handing connections round-robin); passes
 * SIGTERM and SIGINT on and exits once they have stopped; and if one exits on its own, stops the
 * others and exits 1, so the orchestrator restarts the service as a whole (as it would one process).
 */
const superviseWorkers = (name: string, count: number): void => {
  let stopping = false;
  // variables read from GRANTLINE_ENV_FILE (keys, tokens) are left out: each worker reads the file
  const fromFile = (process.env.GRANTLINE_ENV_FILE_KEYS ?? '').split(',').filter(Boolean);
  const env = {
    ...Object.fromEntries(fromFile.map((variable) => [variable, undefined])),
    GRANTLINE_ENV_FILE_KEYS: undefined,
  };
  const workers = Array.from({ length: count }, () => cluster.fork(env));
  // the exit code: 1 once any worker ended badly (or on its own), else 0
  let code = 0;
  const exitWhenAllGone = () => {
    if (workers.every((w) => w.isDead())) process.exit(code);
  };
  const stopAll = () => {
    if (stopping) return;
    stopping = true;
    for (const worker of workers) if (!worker.isDead()) worker.process.kill('SIGTERM');
    exitWhenAllGone();
  };
  for (const worker of workers)
    worker.once('exit', (exitCode, signal) => {
      // a worker still starting when asked to stop has no handler yet: SIGTERM ends it, as asked
      if (exitCode !== 0 && !(stopping && signal === 'SIGTERM')) code = 1;
      if (!stopping) {
        code = 1;
        console.error(
          `${name}: worker ${worker.process.pid} exited (${signal ?? exitCode}); stopping the others`,
        );
        stopAll();
      }
      exitWhenAllGone();
    });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, stopAll);
};
