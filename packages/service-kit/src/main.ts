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
    stopOnSignals(await start(config, runtimeFromConfig(distributed)));
  } catch (error) {
    console.error(describeStartupFailure(name, error));
    process.exit(1);
  }
};
