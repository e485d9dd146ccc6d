import type { KeyValueStore } from '@grantline/key-value';
import { clientAddressKey, sha256Digest } from '@grantline/oauth';
import { ATTRS, type Logger, lazyInstruments, METRICS } from '@grantline/telemetry';
import { RateLimiterRes } from 'rate-limiter-flexible';

export interface LoginLimits {
  /** failed sign-ins per username before it is locked */
  perUsername: number;
  /** failed sign-ins per client address before it is locked */
  perAddress: number;
  /** failed sign-ins across every username and address: what a spray from many addresses meets */
  global: number;
  /** window in which failures count, and how long a lock-out lasts */
  windowSeconds: number;
}

type Limit = 'username' | 'address' | 'global';

/** Seconds until an attempt may go ahead again, from a limiter's refusal. */
const secondsOf = (refusal: RateLimiterRes) => Math.max(1, Math.ceil(refusal.msBeforeNext / 1000));

/**
 * Brute-force protection for the login form (RFC 6749 §10.10): sign-in attempts are counted per
 * username, per address (an IPv6 address by its /64) and in one global budget in Redis, so every authorization instance shares
 * the counts, and a success gives them back; past a limit the username or address is locked out for
 * the window, and past the global budget every sign-in waits for the window to end. Usernames are
 * stored as digests. A refused attempt is counted in a metric, never written as an event (that would
 * let anyone grow the event store without bound). If Redis is unreachable the count is skipped and
 * logged (fail-open for availability: the password check still runs, and scrypt bounds the guessing
 * rate).
 */
export const loginLimiter = (store: KeyValueStore, prefix: string, limits: LoginLimits, logger: Logger) => {
  const limiter = (keyPrefix: string, points: number, blockSeconds: number) =>
    store.limiter({
      keyPrefix: `${prefix}${keyPrefix}`,
      points,
      duration: limits.windowSeconds,
      blockDuration: blockSeconds,
    });
  const byUsername = limiter('login-user', limits.perUsername, limits.windowSeconds);
  const byAddress = limiter('login-addr', limits.perAddress, limits.windowSeconds);
  // no lock-out beyond the window: the budget refills when the window ends
  const overall = limiter('login-global', limits.global, 0);
  const GLOBAL = 'all';
  const userKey = (username: string) => sha256Digest(username.toLowerCase());
  // on first refusal, not here: the service is built before telemetry starts
  const refused = lazyInstruments('@grantline/authorization', (meter) =>
    meter.createCounter(METRICS.limiterRefused, { description: 'attempts refused by a rate limiter' }),
  );
  const refuse = (limit: Limit, refusal: RateLimiterRes) => {
    refused().add(1, { [ATTRS.limiter]: 'login', [ATTRS.limit]: limit });
    return secondsOf(refusal);
  };

  const countPerKey = async (username: string, address: string): Promise<number> => {
    const [user, addr] = await Promise.allSettled([
      byUsername.consume(userKey(username)),
      byAddress.consume(clientAddressKey(address)),
    ]);
    for (const [limit, result] of [
      ['address', addr],
      ['username', user],
    ] as const) {
      if (result.status === 'fulfilled') continue;
      if (!(result.reason instanceof RateLimiterRes)) throw result.reason;
      return refuse(limit, result.reason);
    }
    return 0;
  };

  return {
    /**
     * Counts this attempt against the username and the address, then the global budget, before the
     * password is checked (so parallel guesses cannot all pass a check made before any of them
     * failed). Returns 0 when the attempt may go ahead, else the seconds until one may.
     */
    async attempt(username: string, address: string): Promise<number> {
      try {
        const locked = await countPerKey(username, address);
        // only attempts that pass the per-key limits spend the global budget: one locked-out address
        // hammering on does not use it up for everyone
        if (locked > 0) return locked;
        try {
          await overall.consume(GLOBAL);
          return 0;
        } catch (error) {
          if (!(error instanceof RateLimiterRes)) throw error;
          // refused before any password was checked: not a failure of this username or address
          await Promise.allSettled([
            byUsername.reward(userKey(username), 1),
            byAddress.reward(clientAddressKey(address), 1),
          ]);
          return refuse('global', error);
        }
      } catch (error) {
        logger.warn({ err: error }, 'login limiter unavailable; not counting');
        return 0;
      }
    },
    /** a successful sign-in: the username starts afresh, the address and the budget get the attempt back */
    async recordSuccess(username: string, address: string): Promise<void> {
      await Promise.all([
        byUsername.delete(userKey(username)),
        byAddress.reward(clientAddressKey(address), 1),
        overall.reward(GLOBAL, 1),
      ]).catch((error: unknown) => logger.warn({ err: error }, 'login limiter unavailable'));
    },
  };
};

export type LoginLimiter = ReturnType<typeof loginLimiter>;
