import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { KeyValueStore, LimiterOptions } from './port.ts';

/**
 * The key-value port in process memory, for the embedded mode (one process is every instance).
 * `now` is the clock, injected so tests need not sleep; expired keys are swept as they are read and
 * once a minute. Limiters are rate-limiter-flexible's memory limiters (their own clock).
 */
export class MemoryKeyValueStore implements KeyValueStore {
  private readonly until = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  async setIfAbsent(key: string, ttlSeconds: number): Promise<boolean> {
    if (this.live(key)) return false;
    this.until.set(key, this.now() + ttlSeconds * 1_000);
    return true;
  }

  async set(key: string, ttlSeconds: number): Promise<void> {
    this.until.set(key, this.now() + ttlSeconds * 1_000);
  }

  async exists(key: string): Promise<boolean> {
    return this.live(key);
  }

  limiter(options: LimiterOptions) {
    return new RateLimiterMemory({ ...options, blockDuration: options.blockDuration ?? 0 });
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.until.clear();
  }

  private live(key: string): boolean {
    const expires = this.until.get(key);
    if (expires === undefined) return false;
    if (expires > this.now()) return true;
    this.until.delete(key);
    return false;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, expires] of this.until) if (expires <= now) this.until.delete(key);
  }
}
