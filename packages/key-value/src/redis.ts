import type { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { KeyValueStore, LimiterOptions } from './port.ts';

const seconds = (ttl: number) => Math.max(1, Math.ceil(ttl));

/** The key-value port on Redis: every instance sees one store. Keys are used as given. */
export class RedisKeyValueStore implements KeyValueStore {
  constructor(readonly redis: Redis) {}

  async setIfAbsent(key: string, ttlSeconds: number): Promise<boolean> {
    return (await this.redis.set(key, '1', 'EX', seconds(ttlSeconds), 'NX')) === 'OK';
  }

  async set(key: string, ttlSeconds: number): Promise<void> {
    await this.redis.set(key, '1', 'EX', seconds(ttlSeconds));
  }

  async exists(key: string): Promise<boolean> {
    return (await this.redis.exists(key)) === 1;
  }

  limiter(options: LimiterOptions) {
    return new RateLimiterRedis({
      storeClient: this.redis,
      ...options,
      blockDuration: options.blockDuration ?? 0,
      rejectIfRedisNotReady: true,
    });
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
