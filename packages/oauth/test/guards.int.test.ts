import { RedisKeyValueStore } from '@grantline/key-value';
import { uniqueName } from '@grantline/testing';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { failureLimiter, jtiGuard } from '../src/guards.ts';

const kv = (redis: Redis) => new RedisKeyValueStore(redis);

describe('Redis guards of client authentication', () => {
  const redis = new Redis(inject('infra').redisUrl);
  const down = new Redis('redis://127.0.0.1:1', {
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    lazyConnect: true,
  });
  down.on('error', () => {});
  afterAll(() => {
    redis.disconnect();
    down.disconnect();
  });
  const warnings: unknown[] = [];
  const logger = { warn: (o: unknown) => void warnings.push(o) };

  it('accepts a jti once across callers, and refuses assertions when Redis cannot answer (fail closed)', async () => {
    const claim = jtiGuard(kv(redis), `${uniqueName('g')}:`);
    expect(await claim('c1:j1', 60)).toBe(true);
    expect(await claim('c1:j1', 60)).toBe(false);
    expect(await claim('c2:j1', 60)).toBe(true);
    await expect(jtiGuard(kv(down), 'x:')('c:j', 60)).rejects.toThrow();
  });

  it('locks a (client id, address) pair out after the limit, shared through Redis, and only warns when Redis is down', async () => {
    const prefix = `${uniqueName('g')}:`;
    const [a, b] = [
      failureLimiter(kv(redis), prefix, 3, logger),
      failureLimiter(kv(redis), prefix, 3, logger),
    ];
    const ip = '198.51.100.7';
    expect(await a.recordFailure('c1', ip)).toBe(0);
    expect(await b.recordFailure('c1', ip)).toBe(0);
    expect(await a.recordFailure('c1', ip)).toBe(0);
    expect(await b.recordFailure('c1', ip)).toBeGreaterThan(50); // the 4th failure, counted across instances
    expect(b.lockedOutFor('c1', ip)).toBeGreaterThan(50);
    expect(b.lockedOutFor('c1', '203.0.113.9')).toBe(0); // the client from elsewhere is not locked out
    expect(await a.recordFailure('c1', '203.0.113.9')).toBe(0);
    expect(a.lockedOutFor('c2', ip)).toBe(0);
    const offline = failureLimiter(kv(down), prefix, 3, logger);
    expect(await offline.recordFailure('c1', ip)).toBe(0);
    expect(warnings).toHaveLength(1);
  });

  it('finding 9: a client assertion jti is one namespace for every service of a deployment', async () => {
    const deployment = `${uniqueName('d')}.`;
    const tokenService = jtiGuard(kv(redis), deployment);
    const grantManagement = jtiGuard(kv(redis), deployment);
    expect(await tokenService('client-1:jti-1', 60)).toBe(true);
    expect(await grantManagement('client-1:jti-1', 60)).toBe(false);
    expect(await jtiGuard(kv(redis), `${uniqueName('d')}.`)('client-1:jti-1', 60)).toBe(true);
  });
});
