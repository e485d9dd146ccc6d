import { sha256Digest } from '@grantline/oauth';
import type { Logger } from '@grantline/telemetry';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, type RateLimiterRes } from 'rate-limiter-flexible';

export interface LoginLimits {
  /** failed sign-ins per username before it is locked */
  perUsername: number;
  /** failed sign-ins per client address before it is locked */
  perAddress: number;
  /** window in which failures count, and how long a lock-out lasts */
  windowSeconds: number;
}

/**
 * Brute-force protection for the login form (RFC 6749 §10.10, RFC 9700 §4.x): failed sign-ins are
 * counted per username and per address in Redis, so every authorization instance shares one count;
 * past the limit the username or address is locked out for the window. Usernames are stored as
 * digests. If Redis is unreachable the count is skipped and logged (fail-open for availability: the
 * password check still runs, and scrypt bounds the guessing rate).
 */
export const loginLimiter = (redis: Redis, prefix: string, limits: LoginLimits, logger: Logger) => {
  const options = (keyPrefix: string, points: number) =>
    new RateLimiterRedis({
      storeClient: redis,
      keyPrefix: `${prefix}${keyPrefix}`,
      points,
      duration: limits.windowSeconds,
      blockDuration: limits.windowSeconds,
      rejectIfRedisNotReady: true,
    });
  const byUsername = options('login-user', limits.perUsername);
  const byAddress = options('login-addr', limits.perAddress);
  const userKey = (username: string) => sha256Digest(username.toLowerCase());

  const retryAfter = (r: RateLimiterRes | null, points: number) =>
    r && r.consumedPoints >= points ? Math.max(1, Math.ceil(r.msBeforeNext / 1000)) : 0;

  return {
    /** seconds until this username or address may try again; 0 when it may now */
    async lockedFor(username: string, address: string): Promise<number> {
      try {
        const [u, a] = await Promise.all([byUsername.get(userKey(username)), byAddress.get(address)]);
        return Math.max(retryAfter(u, limits.perUsername), retryAfter(a, limits.perAddress));
      } catch (error) {
        logger.warn({ err: error }, 'login limiter unavailable; not counting');
        return 0;
      }
    },
    async recordFailure(username: string, address: string): Promise<void> {
      await Promise.all([byUsername.penalty(userKey(username), 1), byAddress.penalty(address, 1)]).catch(
        (error: unknown) => logger.warn({ err: error }, 'login limiter unavailable; not counting'),
      );
    },
    async recordSuccess(username: string): Promise<void> {
      await byUsername.delete(userKey(username)).catch(() => undefined);
    },
  };
};

export type LoginLimiter = ReturnType<typeof loginLimiter>;
