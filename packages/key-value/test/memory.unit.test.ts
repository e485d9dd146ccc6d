import { afterAll } from 'vitest';
import { MemoryKeyValueStore } from '../src/memory.ts';
import { keyValueContract } from './contract.ts';

/** The embedded adapter, on a fake clock. */
let now = Date.now();
const store = new MemoryKeyValueStore(() => now);
afterAll(() => store.close());

keyValueContract(
  'memory',
  () => store,
  async (ms) => {
    now += ms;
  },
);
