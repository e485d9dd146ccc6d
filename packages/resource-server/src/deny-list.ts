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
/**
 * An admin's revocation of everything of a subject or a client denies what began up to it (tokens
 * with `iat` at or before `revokedAt`), not what the token service issued afterwards (a new
 * connection, new client credentials): as introspection decides.
 */
const WIDE = ['sub:', 'client:'];

interface Entry {
  /** epoch ms: forgotten after */
  until: number;
  /** epoch ms: the revocation's time (the latest published, so a repeated revocation covers what came since) */
  revokedAt: number;
}

export class DenyList {
  private readonly until = new Map<string, Entry>();
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
    instruments().staleness.addCallback(this.observe);
  }

  /** stops reporting staleness and forgets every fact */
  close(): void {
    instruments().staleness.removeCallback(this.observe);
    this.until.clear();
    this.connected = false;
  }

  apply(fact: RevocationFact): void {
    const expires = Date.parse(fact.expiresAt);
    const revokedAt = Date.parse(fact.revokedAt);
    const now = this.now();
    const known = this.until.get(fact.key);
    // a fact published again never gets shorter (revocation is terminal); a repeated subject or
    // client revocation covers what began since the first
    if (expires > now || known)
      this.until.set(fact.key, {
        until: Math.max(expires, known?.until ?? 0),
        revokedAt: Math.max(revokedAt, known?.revokedAt ?? 0),
      });
    if (fact.sequence > this.lastSequence) this.lastSequence = fact.sequence;
    // the bootstrap's replay of old facts says nothing about propagation
    if (this.bootstrapped)
      instruments().propagation.record(Math.max(0, now - Date.parse(fact.revokedAt)) / 1_000);
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

  /**
   * The first of `keys` that is revoked for a token issued at `issuedAtMs` (its `iat`), if any: a
   * `sub:` or `client:` fact only when the token began up to the revocation.
   */
  revoked(keys: readonly string[], issuedAtMs = Number.NEGATIVE_INFINITY): string | undefined {
    const now = this.now();
    return keys.find((key) => {
      const entry = this.until.get(key);
      if (entry === undefined) return false;
      if (entry.until <= now) {
        this.until.delete(key);
        return false;
      }
      return !WIDE.some((prefix) => key.startsWith(prefix)) || issuedAtMs <= entry.revokedAt;
    });
  }

  get size(): number {
    return this.until.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.until) if (entry.until <= now) this.until.delete(key);
  }
}
