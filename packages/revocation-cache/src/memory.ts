import type { Revocation, RevocationCache } from './port.ts';

/**
 * The revocation cache of the embedded mode: facts in process memory, each until its TTL. `now` is
 * the clock (injected so tests need not sleep). Expired facts are swept as they are looked up and
 * once a minute, so memory follows the live facts.
 */
export class MemoryRevocationCache implements RevocationCache {
  private readonly until = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  async revoke(revocations: readonly Revocation[]): Promise<void> {
    for (const { key, ttlSeconds } of revocations) {
      const expires = this.now() + ttlSeconds * 1_000;
      // a fact recorded again never gets shorter
      if ((this.until.get(key) ?? 0) < expires) this.until.set(key, expires);
    }
  }

  async isRevoked(keys: readonly string[]): Promise<boolean> {
    const now = this.now();
    return keys.some((key) => {
      const expires = this.until.get(key);
      if (expires === undefined) return false;
      if (expires > now) return true;
      this.until.delete(key);
      return false;
    });
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.until.clear();
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, expires] of this.until) if (expires <= now) this.until.delete(key);
  }
}
