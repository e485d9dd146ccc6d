import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type RevocationCache, revocationKeys } from '../src/port.ts';

/** The revocation cache port's contract. Every adapter runs it (Redis now, in-memory in embedded mode). */
export const revocationCacheContract = (
  adapter: string,
  cache: () => RevocationCache,
  expire: (ms: number) => Promise<void>,
) =>
  describe(`RevocationCache contract: ${adapter}`, () => {
    const grant = () => revocationKeys.grant(randomUUID());

    it('answers false for keys never revoked, true once any of them is', async () => {
      const [a, b] = [grant(), grant()];
      expect(await cache().isRevoked([a, b])).toBe(false);
      await cache().revoke([{ key: b, ttlSeconds: 60 }]);
      expect(await cache().isRevoked([a, b])).toBe(true);
      expect(await cache().isRevoked([a])).toBe(false);
      expect(await cache().isRevoked([])).toBe(false);
    });

    it('forgets a fact after its TTL, not before', async () => {
      const key = grant();
      await cache().revoke([{ key, ttlSeconds: 1 }]);
      expect(await cache().isRevoked([key])).toBe(true);
      await expire(1_200);
      expect(await cache().isRevoked([key])).toBe(false);
    });

    it('never shortens a revocation when the same fact is recorded again with a shorter TTL', async () => {
      const key = grant();
      await cache().revoke([{ key, ttlSeconds: 60 }]);
      await cache().revoke([{ key, ttlSeconds: 1 }]);
      await expire(1_200);
      expect(await cache().isRevoked([key])).toBe(true);
    });

    it('revokes many facts at once and answers its health check', async () => {
      const keys = Array.from({ length: 50 }, grant);
      await cache().revoke(keys.map((key) => ({ key, ttlSeconds: 60 })));
      for (const key of keys) expect(await cache().isRevoked([key])).toBe(true);
      await expect(cache().ping()).resolves.toBeUndefined();
    });
  });
