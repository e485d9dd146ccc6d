import { afterAll } from 'vitest';
import { MemoryRevocationCache } from '../src/memory.ts';
import { revocationCacheContract } from './contract.ts';

/** The embedded adapter, on a fake clock: its TTLs pass without sleeping. */
let now = Date.now();
const cache = new MemoryRevocationCache(() => now);
afterAll(() => cache.close());

revocationCacheContract(
  'memory',
  () => cache,
  async (ms) => {
    now += ms;
  },
);
