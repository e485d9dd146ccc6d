import type { RevocationMessage } from '@grantline/events';
import type { ConsumedEvent } from '@grantline/message-bus';
import type { Revocation, RevocationCache } from '@grantline/revocation-cache';
import type pg from 'pg';
import { factsOf } from '../domain/facts.ts';

export type FactMessage = Extract<RevocationMessage, { type: 'RevocationFact' }>['data'];

/**
 * The revocation facts, one row per deny-list key: the service's own record, rebuilt from the grants
 * and tokens topics. The deny-list (Redis, or memory) is a copy of its live rows, the revocations
 * topic and the HTTP stream publish them; `sequence` numbers them for the stream's resumable ids.
 */
export const factsTable = (schema: string) => `
  CREATE TABLE IF NOT EXISTS ${schema}.revocation_facts (
    sequence bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key text NOT NULL UNIQUE,
    fact jsonb NOT NULL,
    revoked_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    published boolean NOT NULL DEFAULT false
  );
  CREATE INDEX IF NOT EXISTS revocation_facts_unpublished ON ${schema}.revocation_facts (sequence) WHERE NOT published`;

/**
 * Records the facts an event states. Order-free: a fact recorded again keeps the earliest revocation
 * time and the latest expiry (both commutative), so replaying the topics from offset 0, or receiving
 * events out of order, ends in the same rows. The deny-list gets each fact in the same step: a
 * transaction that then fails only leaves a revocation the redelivery records anyway. A deny-list
 * that cannot take it (Redis down) does not stop the record: `cacheFailed` has the whole list
 * copied again once it answers.
 */
export const factsProjection = (
  schema: string,
  options: { ttlSeconds: number; cache: () => RevocationCache; cacheFailed: (error: unknown) => void },
) => {
  const t = `${schema}.revocation_facts`;
  return async (event: ConsumedEvent, tx: pg.PoolClient) => {
    const facts = factsOf(event);
    if (facts.length === 0) return;
    const revokedAt = new Date(event.time);
    const expiresAt = new Date(revokedAt.getTime() + options.ttlSeconds * 1_000);
    await tx.query(
      `INSERT INTO ${t} AS f (key, fact, revoked_at, expires_at)
       SELECT key, fact, $3, $4 FROM unnest($1::text[], $2::jsonb[]) AS u(key, fact)
       ON CONFLICT (key) DO UPDATE SET
         revoked_at = LEAST(f.revoked_at, excluded.revoked_at),
         expires_at = GREATEST(f.expires_at, excluded.expires_at),
         published = f.published AND f.expires_at >= excluded.expires_at`,
      [facts.map((f) => f.key), facts.map((f) => JSON.stringify(f)), revokedAt, expiresAt],
    );
    const ttl = (expiresAt.getTime() - Date.now()) / 1_000;
    if (ttl > 0)
      await options
        .cache()
        .revoke(facts.map((f) => ({ key: f.key, ttlSeconds: ttl })))
        .catch(options.cacheFailed);
  };
};

interface Row {
  sequence: string;
  fact: FactMessage;
  revoked_at: Date;
  expires_at: Date;
}

const message = (r: Row): FactMessage => ({
  ...r.fact,
  revokedAt: r.revoked_at.toISOString(),
  expiresAt: r.expires_at.toISOString(),
  sequence: Number(r.sequence),
});

/** Queries over the facts: what introspection checks, what the publisher and the stream send. */
export class FactLog {
  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  /** Which of `keys` are revoked, whatever their age (the table forgets nothing: a refresh token outlives any TTL). */
  async revoked(keys: readonly string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const { rows } = await this.pool.query<{ key: string }>(
      `SELECT key FROM ${this.schema}.revocation_facts WHERE key = ANY($1::text[])`,
      [keys],
    );
    return new Set(rows.map((r) => r.key));
  }

  /** Live facts after `sequence`, in order (the stream's replay from a `Last-Event-ID`). */
  async liveAfter(sequence: number, now: Date, limit = 1_000): Promise<FactMessage[]> {
    const { rows } = await this.pool.query<Row>(
      `SELECT sequence, fact, revoked_at, expires_at FROM ${this.schema}.revocation_facts
       WHERE sequence > $1 AND expires_at > $2 ORDER BY sequence LIMIT $3`,
      [sequence, now, limit],
    );
    return rows.map(message);
  }

  /** Facts not yet on the revocations topic, oldest first. */
  async unpublished(limit = 500): Promise<FactMessage[]> {
    const { rows } = await this.pool.query<Row>(
      `SELECT sequence, fact, revoked_at, expires_at FROM ${this.schema}.revocation_facts
       WHERE NOT published ORDER BY sequence LIMIT $1`,
      [limit],
    );
    return rows.map(message);
  }

  /** Marks facts as published, unless an expiry they were published with has since grown. */
  async markPublished(facts: readonly FactMessage[]): Promise<void> {
    await this.pool.query(
      `UPDATE ${this.schema}.revocation_facts f SET published = true
       FROM unnest($1::bigint[], $2::timestamptz[]) AS p(sequence, expires_at)
       WHERE f.sequence = p.sequence AND f.expires_at = p.expires_at`,
      [facts.map((f) => f.sequence), facts.map((f) => f.expiresAt)],
    );
  }

  async lastSequence(): Promise<number> {
    const { rows } = await this.pool.query<{ max: string | null }>(
      `SELECT max(sequence) FROM ${this.schema}.revocation_facts`,
    );
    return Number(rows[0]?.max ?? 0);
  }

  /** Every live fact as a deny-list entry with its remaining lifetime (the rebuild of an emptied cache). */
  async liveRevocations(now: Date): Promise<Revocation[]> {
    const { rows } = await this.pool.query<{ key: string; expires_at: Date }>(
      `SELECT key, expires_at FROM ${this.schema}.revocation_facts WHERE expires_at > $1`,
      [now],
    );
    return rows.map((r) => ({ key: r.key, ttlSeconds: (r.expires_at.getTime() - now.getTime()) / 1_000 }));
  }
}
