import { Redis, type RedisOptions } from 'ioredis';
import type { Revocation, RevocationCache } from './port.ts';

export interface RedisRevocationCacheOptions {
  url: string;
  /** namespaces the keys, so several deployments (or tests) can share one Redis */
  prefix?: string;
  redis?: RedisOptions;
}

/** Revocation cache on Redis: one key per fact, expiring after its TTL; a lookup is one EXISTS. */
export class RedisRevocationCache implements RevocationCache {
  readonly redis: Redis;
  private readonly prefix: string;

  constructor(options: RedisRevocationCacheOptions) {
    this.prefix = options.prefix ?? 'grantline:revoked:';
    // Bounded waits: a lookup against an unreachable Redis fails within ~1 s rather than queueing,
    // so the resource-server SDK can apply its declared policy (fail closed, or introspect).
    this.redis = new Redis(options.url, {
      maxRetriesPerRequest: 1,
      commandTimeout: 1_000,
      connectTimeout: 2_000,
      ...options.redis,
    });
    // Errors surface on the calls that fail; ioredis reconnects on its own.
    this.redis.on('error', () => {});
  }

  async revoke(revocations: readonly Revocation[]): Promise<void> {
    if (revocations.length === 0) return;
    const pipeline = this.redis.multi();
    for (const r of revocations) {
      // GT keeps the longer of two TTLs: a revocation never expires earlier because it was repeated.
      pipeline.set(this.prefix + r.key, '1', 'EX', Math.max(1, Math.ceil(r.ttlSeconds)), 'NX');
      pipeline.expire(this.prefix + r.key, Math.max(1, Math.ceil(r.ttlSeconds)), 'GT');
    }
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  }

  async isRevoked(keys: readonly string[]): Promise<boolean> {
    if (keys.length === 0) return false;
    return (await this.redis.exists(...keys.map((k) => this.prefix + k))) > 0;
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
