import { instruments } from './telemetry.ts';

/** A fact of `grantline.revocations.v1` as a subscriber needs it (the topic's `RevocationFact`). */
export interface RevocationFact {
  key: string;
  revokedAt: string;
  expiresAt: string;
  sequence: number;
}

/**
 * The resource server's local deny-list: the live revocation keys, each until its fact's
 * `expiresAt` (by then every access token it denies has expired), and the freshness watermark (when
 * the feed last proved it was live, with a heartbeat). Fed by a subscriber; read on every request.
 */
export class DenyList {
  private readonly until = new Map<string, number>();
  private lastHeartbeatAt: number | undefined;
  private bootstrapped = false;
  private connected = false;
  /** the highest fact sequence applied: where a reconnect resumes */
  lastSequence = 0;

  private readonly observe = (gauge: { observe(value: number): void }) => {
    const age = this.ageMs();
    if (age !== undefined) gauge.observe(age / 1_000);
  };

  constructor(private readonly now: () => number = Date.now) {
    instruments.staleness.addCallback(this.observe);
  }

  /** stops reporting staleness and forgets every fact */
  close(): void {
    instruments.staleness.removeCallback(this.observe);
    this.until.clear();
    this.connected = false;
  }

  apply(fact: RevocationFact): void {
    const expires = Date.parse(fact.expiresAt);
    const now = this.now();
    // a fact published again never gets shorter (revocation is terminal)
    if (expires > now && (this.until.get(fact.key) ?? 0) < expires) this.until.set(fact.key, expires);
    if (fact.sequence > this.lastSequence) this.lastSequence = fact.sequence;
    // the bootstrap's replay of old facts says nothing about propagation
    if (this.bootstrapped)
      instruments.propagation.record(Math.max(0, now - Date.parse(fact.revokedAt)) / 1_000);
    if (this.until.size % 1_024 === 0) this.sweep();
  }

  /** a heartbeat: every fact published before it has been applied (the stream replays facts first) */
  heartbeat(): void {
    this.lastHeartbeatAt = this.now();
    this.bootstrapped = true;
    this.connected = true;
  }

  /** the feed went away: stale at once, whatever the age of the last heartbeat */
  disconnected(): void {
    this.connected = false;
  }

  get ready(): boolean {
    return this.bootstrapped;
  }

  /** milliseconds since the last heartbeat; undefined before the first */
  ageMs(): number | undefined {
    return this.lastHeartbeatAt === undefined ? undefined : this.now() - this.lastHeartbeatAt;
  }

  /** fresh: bootstrapped, connected, and a heartbeat within the budget */
  isFresh(budgetMs: number): boolean {
    const age = this.ageMs();
    return this.bootstrapped && this.connected && age !== undefined && age <= budgetMs;
  }

  /** the first of `keys` that is revoked, if any */
  revoked(keys: readonly string[]): string | undefined {
    const now = this.now();
    return keys.find((key) => {
      const expires = this.until.get(key);
      if (expires === undefined) return false;
      if (expires > now) return true;
      this.until.delete(key);
      return false;
    });
  }

  get size(): number {
    return this.until.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, expires] of this.until) if (expires <= now) this.until.delete(key);
  }
}
