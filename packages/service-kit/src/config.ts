import express from 'express';
import { z } from 'zod';
import { kafkaConfigShape } from './kafka-config.ts';

/** A configuration that cannot start a service: every bad or missing variable, by name. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

const list = (s: string) =>
  s
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

/** Whether express's `trust proxy` (proxy-addr) accepts `entry`: it parses the list at `set` time. */
const trustable = (entry: string) => {
  try {
    express().set('trust proxy', [entry]);
    return true;
  } catch {
    return false;
  }
};

/**
 * A failure to start that the operator can fix: its message names the cause and the remedy, and is
 * printed as it is, without a stack trace. Errors from other packages join in by carrying
 * `startup: true` (the keys package's unreadable signing keys do).
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
  readonly startup = true;
}

/** Settings every service shares. Each key: what it is for, and a default or a clear error. */
export const baseConfigSchema = z.object({
  /** HTTP port of the service (0 picks a free one) */
  PORT: z.coerce.number().int().min(0).max(65_535).default(8080),
  /**
   * HTTP port of the management listener: `/admin/...`, `/metrics`, detailed `/readyz`. Keep it off
   * the public ingress. Default PORT + 1000 (9080 with the default PORT); 0 picks a free one (the
   * default when PORT is 0)
   */
  MANAGEMENT_PORT: z.coerce.number().int().min(0).max(65_535).optional(),
  /** address to listen on (both listeners) */
  HOST: z.string().default('127.0.0.1'),
  /** pino level: fatal, error, warn, info, debug, trace */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** OTLP/HTTP endpoint for traces and metrics; unset means no export (Prometheus /metrics still works) */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  /**
   * The reverse proxies (gateway, ingress controller, load balancer) whose `X-Forwarded-For` is
   * believed, comma-separated: addresses, CIDR ranges, or `loopback`, `linklocal`, `uniquelocal`.
   * Default none: the client is the peer of the TCP connection, and a forwarded header is ignored
   * (anyone can send one; the login limiter counts per client address).
   */
  GRANTLINE_TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform(list)
    .pipe(
      z.array(
        z.string().refine(trustable, 'not an IP address, CIDR range or loopback/linklocal/uniquelocal'),
      ),
    ),
  /** how long a graceful shutdown may take before the process exits anyway */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
});

/**
 * What the distributed mode adds to a service's settings: where its Postgres, Kafka and Redis are.
 * The embedded mode (`pnpm start`) needs none of them.
 */
export const distributedConfigSchema = z.object({
  /** Postgres connection string of the service's event store */
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' }),
  /** comma-separated Kafka bootstrap brokers, host:port */
  KAFKA_BROKERS: z
    .string()
    .transform(list)
    .pipe(z.array(z.string().regex(/^[^:\s]+:\d+$/, 'host:port')).min(1, 'at least one broker')),
  /** Redis connection string (revocation cache, shared rate limits); required by the services that use it */
  REDIS_URL: z.url({ protocol: /^rediss?$/, error: 'must be a redis:// URL' }).optional(),
  /** the most Postgres connections the service opens (its pool's size; each worker's, with GRANTLINE_WORKERS) */
  DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(500).default(20),
  /**
   * processes serving the service on this host (node:cluster: the workers share its ports, each a
   * full instance with its own relay candidacy, consumers and pool); 1 = the process itself
   */
  GRANTLINE_WORKERS: z.coerce.number().int().min(1).max(64).default(1),
  /** prefix of every Kafka topic, to share a cluster between deployments */
  KAFKA_TOPIC_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9._-]*$/)
    .default(''),
  /** partitions per topic, TLS and SASL to the brokers (kafka-config.ts) */
  ...kafkaConfigShape,
});
export type DistributedConfig = z.infer<typeof distributedConfigSchema>;

/** Parses the environment once, at boot. Throws a ConfigError naming each bad variable. */
export const loadConfig = <S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined> = process.env,
): z.infer<S> => {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const [variable, ...within] = issue.path.map(String);
      const name = variable ?? '(environment)';
      const value = env[name];
      if (value === undefined || value === '') return `${name} is required (${issue.message})`;
      return `${name}: ${within.length > 0 ? `item ${within.join('.')}: ` : ''}${issue.message}`;
    }),
  );
};
