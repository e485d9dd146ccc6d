import { setTimeout as sleep } from 'node:timers/promises';
import { uniqueName } from '@grantline/testing';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { RedisRevocationCache } from '../src/redis.ts';
import { revocationCacheContract } from './contract.ts';

const cache = new RedisRevocationCache({ url: inject('infra').redisUrl, prefix: `${uniqueName('rc')}:` });
afterAll(() => cache.close());

revocationCacheContract(
  'redis',
  () => cache,
  (ms) => sleep(ms),
);

describe('Redis revocation cache', () => {
  it('fails its health check and lookups when Redis is unreachable, instead of answering "not revoked"', async () => {
    const down = new RedisRevocationCache({
      url: 'redis://127.0.0.1:1',
      redis: { retryStrategy: () => null },
    });
    try {
      await expect(down.ping()).rejects.toThrow();
      await expect(down.isRevoked(['grant:x'])).rejects.toThrow();
    } finally {
      await down.close();
    }
  });
});
