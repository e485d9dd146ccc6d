import { sha256Digest } from '@grantline/oauth';
import type { Logger } from '@grantline/telemetry';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';

export interface LoginLimits {
  /** failed sign-ins per username before it is locked */
  perUsername: number;
  /** failed sign-ins per client address before it is locked */
  perAddress: number;
  /** window in which failures count, and how long a lock-out lasts */
  windowSeconds: number;
}

/**
 * Brute-force protection for the login form (RFC 6749 §10.10): sign-in attempts are counted per
 * username and per address in Redis, so every authorization instance shares one count, and a
 * success gives them back; past the limit the username or address is locked out for the window. Usernames are stored as
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

  return {
    /**
     * Counts this attempt against the username and the address before the password is checked (so
     * parallel guesses cannot all pass a check made before any of them failed). Returns 0 when the
     * attempt may go ahead, else the seconds until one may.
     */
    async attempt(username: string, address: string): Promise<number> {
      try {
        await Promise.all([byUsername.consume(userKey(username)), byAddress.consume(address)]);
        return 0;
      } catch (error) {
        if (error instanceof RateLimiterRes) return Math.max(1, Math.ceil(error.msBeforeNext / 1000));
        logger.warn({ err: error }, 'login limiter unavailable; not counting');
        return 0;
      }
    },
    /** a successful sign-in: the username starts afresh and the address gets its attempt back */
    async recordSuccess(username: string, address: string): Promise<void> {
      await Promise.all([byUsername.delete(userKey(username)), byAddress.reward(address, 1)]).catch(
        (error: unknown) => logger.warn({ err: error }, 'login limiter unavailable'),
      );
    },
  };
};

export type LoginLimiter = ReturnType<typeof loginLimiter>;
