import type { GrantlineAccessToken } from './verifier.ts';

/**
 * The claims of access tokens whose signature and claims were verified, keyed by the exact token
 * string, so that a token presented again skips the ES256 verification (the dominant cost of a
 * check). For the SDK only that is skipped (the introspection service also keeps its deny-list answer
 * with the entry, ADR 11): the deny-list, the organisation and the scopes are checked on every
 * call, so a revocation takes effect as soon as its fact is applied. An entry lives until the
 * token's `exp` (never longer than verification would accept it), and the cache holds at most
 * `maxEntries`, dropping the oldest first, so a flood of distinct tokens costs bounded memory.
 * Generic over the claims so the introspection service shares it (`@grantline/resource-server/verified-cache`).
 */
export class VerifiedTokenCache<T extends { exp?: number | undefined } = GrantlineAccessToken> {
  private readonly entries = new Map<string, { token: T; expiresAtMs: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(jwt: string): T | undefined {
    const entry = this.entries.get(jwt);
    if (!entry) return undefined;
    if (entry.expiresAtMs <= this.now()) {
      this.entries.delete(jwt);
      return undefined;
    }
    // a copy: a caller that edits its claims must not edit the next request's
    return { ...entry.token };
  }

  set(jwt: string, token: T): void {
    if (this.maxEntries <= 0) return;
    const expiresAtMs = (token.exp ?? 0) * 1_000;
    if (expiresAtMs <= this.now()) return;
    if (this.entries.size >= this.maxEntries && !this.entries.has(jwt)) {
      // the oldest entry first (a Map iterates in insertion order)
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(jwt, { token, expiresAtMs });
  }

  get size(): number {
    return this.entries.size;
  }
}
