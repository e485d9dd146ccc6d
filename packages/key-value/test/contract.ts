import { randomUUID } from 'node:crypto';
import { RateLimiterRes } from 'rate-limiter-flexible';
import { describe, expect, it } from 'vitest';
import type { KeyValueStore } from '../src/port.ts';

/** The key-value port's contract. Every adapter runs it (Redis, and memory for the embedded mode). */
export const keyValueContract = (
  adapter: string,
  store: () => KeyValueStore,
  expire: (ms: number) => Promise<void>,
) =>
  describe(`KeyValueStore contract: ${adapter}`, () => {
    const key = () => `kv-contract:${randomUUID()}`;

    it('records a key once: a second setIfAbsent is refused until it expires', async () => {
      const k = key();
      expect(await store().setIfAbsent(k, 1)).toBe(true);
      expect(await store().setIfAbsent(k, 1)).toBe(false);
      expect(await store().exists(k)).toBe(true);
      await expire(1_200);
      expect(await store().exists(k)).toBe(false);
      expect(await store().setIfAbsent(k, 60)).toBe(true);
    });

    it('set replaces, and exists tells', async () => {
      const k = key();
      expect(await store().exists(k)).toBe(false);
      await store().set(k, 60);
      expect(await store().exists(k)).toBe(true);
      expect(await store().setIfAbsent(k, 60)).toBe(false);
      await expect(store().ping()).resolves.toBeUndefined();
    });

    it('limits attempts per key and blocks past the limit, other keys unaffected', async () => {
      const limiter = store().limiter({
        keyPrefix: `kv-limit-${randomUUID()}`,
        points: 3,
        duration: 60,
        blockDuration: 60,
      });
      for (let i = 0; i < 3; i++) await limiter.consume('a');
      const refused = await limiter.consume('a').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(RateLimiterRes);
      expect((refused as RateLimiterRes).msBeforeNext).toBeGreaterThan(50_000);
      await expect(limiter.consume('b')).resolves.toBeInstanceOf(RateLimiterRes);
    });
  });
