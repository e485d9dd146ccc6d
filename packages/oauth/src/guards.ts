import { type Clock, systemClock } from '@grantline/clock';
import type { KeyValueStore } from '@grantline/key-value';
import type { Logger } from '@grantline/telemetry';
import { LRUCache } from 'lru-cache';
import { RateLimiterRes } from 'rate-limiter-flexible';

/**
 * RFC 7523 §3: each client assertion `jti` is accepted once (Redis SET NX), across every instance and
 * every service that accepts assertions (token endpoint, Grant Management): they share the audiences
 * an assertion may name, so they share one namespace, named after the deployment only.
 */
export const jtiGuard = (store: KeyValueStore, deploymentPrefix: string) => {
  const namespace = `grantline:${deploymentPrefix}client-assertion-jti:`;
  return (key: string, ttlSeconds: number) => store.setIfAbsent(`${namespace}${key}`, ttlSeconds);
};

/**
 * Brute-force protection for client authentication (RFC 6749 §2.3.1): failures per (client id, source
 * address) are counted in Redis, shared by all instances; past the limit that pair is locked out for
 * a minute. Keyed by the pair, not the client id alone, so failures from elsewhere never lock the real
 * client out. The success path costs nothing: a lock-out learnt from a failure is remembered
 * in-process, in a bounded map.
 */
export const failureLimiter = (
  store: KeyValueStore,
  prefix: string,
  failuresPerMinute: number,
  logger: Pick<Logger, 'warn'>,
) => {
  const limiter = store.limiter({
    keyPrefix: `${prefix}authfail`,
    points: failuresPerMinute,
    duration: 60,
    blockDuration: 60,
  });
  // a copy of the limiter's block, which runs on the limiter's own clock (Redis TTLs, or
  // rate-limiter-flexible's memory timers): so this copy reads the system clock too, not domain time
  const lockedUntil = new LRUCache<string, number>({ max: 10_000 });
  const pair = (clientId: string, address: string) => `${clientId}|${address}`;
  return {
    lockedOutFor: (clientId: string, address: string) => {
      const key = pair(clientId, address);
      const until = lockedUntil.get(key);
      if (until === undefined) return 0;
      if (until <= Date.now()) {
        lockedUntil.delete(key);
        return 0;
      }
      return (until - Date.now()) / 1000;
    },
    recordFailure: async (clientId: string, address: string) => {
      const key = pair(clientId, address);
      try {
        await limiter.consume(key);
        return 0;
      } catch (result) {
        // Redis unreachable: the failure is still refused (401); only its counting is lost, and said.
        if (!(result instanceof RateLimiterRes)) {
          logger.warn({ err: result }, 'could not count a failed client authentication');
          return 0;
        }
        lockedUntil.set(key, Date.now() + result.msBeforeNext);
        return result.msBeforeNext / 1000;
      }
    },
  };
};

/**
 * Sessions ended before their cookie expires (sign-out), checked by every service that honours the
 * session cookie (authorization and consent). The record that lasts is the `UserLoggedOut` event,
 * read through `ended` (the authorization service's own session stream, the consent service's
 * projection of it); Redis holds a copy until the cookie would have expired, written at sign-out,
 * so every instance knows at once. A session Redis does not know as ended is asked of `ended`: Redis
 * may have lost its data (a restart without persistence, a flush) or be unreachable, and a
 * signed-out cookie must not come back to life then.
 */
export const sessionRevocations = (
  store: KeyValueStore,
  topicPrefix: string,
  ended: (sid: string) => Promise<boolean>,
) => {
  const key = (sid: string) => `grantline:${topicPrefix}session-revoked:${sid}`;
  return {
    revoke: (sid: string, ttlSeconds: number): Promise<void> => store.set(key(sid), ttlSeconds),
    isRevoked: async (sid: string): Promise<boolean> =>
      (await store.exists(key(sid)).catch(() => false)) || ended(sid),
  };
};

export type SessionRevocations = ReturnType<typeof sessionRevocations>;

/**
 * Single use of a short-lived browser statement (a consent form, a consent verdict): the first use of
 * its `jti` claims it in Redis (SET NX) until the statement expires; a later use is refused, on every
 * instance. Redis rather than an append to the event store, as codes have: both statements are bound
 * to the browser session and live 10 minutes at most, so a replay after Redis lost its data within
 * that time gains only what the session cookie's holder could get by starting a new flow, and one
 * round trip costs less than an event per flow on the public topics. If Redis cannot answer, the
 * statement is refused (the error propagates).
 */
export const singleUse =
  (store: KeyValueStore, prefix: string, clock: Clock = systemClock) =>
  (kind: string, jti: string, expiresAt: number): Promise<boolean> =>
    store.setIfAbsent(`${prefix}used:${kind}:${jti}`, Math.max(1, Math.ceil(expiresAt - clock.now() / 1000)));

export type SingleUse = ReturnType<typeof singleUse>;
