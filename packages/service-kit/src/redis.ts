import type { Logger } from '@grantline/telemetry';
import { Redis } from 'ioredis';

/**
 * Redis for shared counters, replay guards and session revocations: commands fail fast (one retry,
 * 1 s timeout) instead of queueing while Redis is away, and connection errors are logged, not thrown.
 */
export const connectRedis = (url: string, logger: Pick<Logger, 'warn'>): Redis => {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, commandTimeout: 1_000 });
  redis.on('error', (e) => logger.warn({ err: e }, 'redis error'));
  return redis;
};
