import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, inject } from 'vitest';
import { RedisKeyValueStore } from '../src/redis.ts';
import { keyValueContract } from './contract.ts';

const store = new RedisKeyValueStore(new Redis(inject('infra').redisUrl));
afterAll(() => store.close());

keyValueContract(
  'redis',
  () => store,
  (ms) => sleep(ms),
);
