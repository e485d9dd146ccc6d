import type { RateLimiterAbstract } from 'rate-limiter-flexible';

export interface LimiterOptions {
  /** namespaces this limiter's counters */
  keyPrefix: string;
  /** attempts allowed per `duration` */
  points: number;
  /** the counting window, seconds */
  duration: number;
  /** how long a key stays refused once over the limit, seconds (default: to the end of the window) */
  blockDuration?: number;
}

/**
 * The key-value port: short-lived flags and counters shared by a service's instances (replay guards,
 * single-use statements, ended sessions, brute-force limits). Redis in the distributed mode, process
 * memory in the embedded one; one contract suite runs against both.
 */
export interface KeyValueStore {
  /** Records `key` for `ttlSeconds` unless it exists; true when this call recorded it (SET NX). */
  setIfAbsent(key: string, ttlSeconds: number): Promise<boolean>;
  /** Records `key` for `ttlSeconds`, replacing what was there. */
  set(key: string, ttlSeconds: number): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** A rate-limiter-flexible limiter whose counters live in this store. */
  limiter(options: LimiterOptions): RateLimiterAbstract;
  /** throws when the store cannot answer (readiness) */
  ping(): Promise<void>;
  close(): Promise<void>;
}
