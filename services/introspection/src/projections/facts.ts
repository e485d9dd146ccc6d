import type { Queryable, ReadModelMigrations } from '@grantline/event-store';
import type { RevocationMessage } from '@grantline/events';
import type { ConsumedEvent, Projection } from '@grantline/message-bus';
import type { Revocation, RevocationCache } from '@grantline/revocation-cache';
import { lazyInstruments, METRICS } from '@grantline/telemetry';
import type pg from 'pg';
import { type Fact, factsOf, REVOKING_EVENT_TYPES } from '../domain/facts.ts';
import { factNotifications, factsChannel } from './fact-set.ts';

const propagation = lazyInstruments('@grantline/introspection', (meter) =>
  meter.createHistogram(METRICS.revocationPropagation, {
    unit: 's',
    description: 'time from a revoking event to its facts in the deny-list',
  }),
);

export type FactMessage = Extract<RevocationMessage, { type: 'RevocationFact' }>['data'];

/**
 * The revocation facts, one row per deny-list key: the service's own record, rebuilt from the grants
 * and tokens topics. The deny-list (Redis, or memory) is a copy of its live rows, the revocations
 * topic and the HTTP stream publish them. `published_seq` numbers them in publication order: the
 * topic's `sequence` and the stream's resumable ids. A number is drawn under one transaction lock
 * (an advisory lock named after the table), by the projection's transaction that records the fact
 * (or, for a fact left without one, by a publication pass), and held until that commits: so
 * numbers commit in order on every instance, and a reader that has seen n has seen everything below
 * n. `sent` says the topic has it.
 */
export const factsTables: ReadModelMigrations = {
  model: 'revocation-facts',
  migrations: [
    {
      version: 1,
      name: 'revocation facts',
      sql: `
        CREATE TABLE {schema}.revocation_facts (
          id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          key text NOT NULL UNIQUE,
          fact jsonb NOT NULL,
          revoked_at timestamptz NOT NULL,
          expires_at timestamptz NOT NULL,
          published_seq bigint UNIQUE,
          sent boolean NOT NULL DEFAULT false
        );
        CREATE SEQUENCE {schema}.revocation_publication;
        CREATE INDEX revocation_facts_unpublished ON {schema}.revocation_facts (id) WHERE published_seq IS NULL;
        CREATE INDEX revocation_facts_unsent ON {schema}.revocation_facts (published_seq) WHERE NOT sent`,
    },
  ],
};

/**
 * Records the facts events state. Order-free: a fact recorded again keeps the earliest revocation
 * time and the latest expiry (both commutative), so replaying the topics from offset 0, or receiving
 * events out of order, ends in the same rows. That makes the projection idempotent by itself: the
 * runtime applies a run of events as one statement in autocommit (`applyRun`), with no
 * processed-events row and no transaction of its own (one round trip, where a ledger took four:
 * the revocation's longest hop under load). The deny-list gets each fact in the same step: a
 * statement that then fails only leaves a revocation the redelivery records anyway. A deny-list
 * that cannot take it (Redis down or blackholed) neither stops nor slows the record: the write is
 * not waited for, and `cacheFailed` has the whole list copied again once it answers. Every instance's
 * in-memory facts (FactSet) hear of them by a notification delivered at commit; this instance's
 * through `recorded` at once.
 */
export const factsProjection = (
  schema: string,
  options: {
    ttlSeconds: number;
    cache: () => RevocationCache;
    cacheFailed: (error: unknown) => void;
    /** this instance's FactSet, once the statement has committed (a failed run is redelivered) */
    recorded?: (keys: readonly string[], revokedAtMs: number) => void;
  },
) => {
  const t = `${schema}.revocation_facts`;
  const applyRun = async (events: readonly ConsumedEvent[], db: Queryable) => {
    // one row per key (a statement's ON CONFLICT may touch a row once): its earliest revocation and
    // latest expiry in the run, as the table would keep them
    const rows = new Map<string, { fact: Fact; revokedAt: number; expiresAt: number }>();
    for (const event of events) {
      const revokedAt = Date.parse(event.time);
      const expiresAt = revokedAt + options.ttlSeconds * 1_000;
      for (const fact of factsOf(event)) {
        const known = rows.get(fact.key);
        rows.set(fact.key, {
          fact,
          revokedAt: Math.min(revokedAt, known?.revokedAt ?? revokedAt),
          expiresAt: Math.max(expiresAt, known?.expiresAt ?? expiresAt),
        });
      }
    }
    if (rows.size === 0) return;
    const keys = [...rows.keys()];
    const facts = [...rows.values()];
    const byTime = new Map<number, string[]>();
    for (const [key, { revokedAt }] of rows) {
      const group = byTime.get(revokedAt);
      if (group) group.push(key);
      else byTime.set(revokedAt, [key]);
    }
    // Numbered here, so that a publication pass finds it ready to send (no statement of its own that
    // commits a number, with its WAL flush, between this commit and the topic). The lock is taken
    // before any fact row and held to the commit, so the statements that record facts run one at a
    // time (the numbers commit in order), and every other writer of these rows (a pass's numbering
    // and marking) takes it first too: no lock cycle over the rows. A number drawn for a fact that
    // keeps its own is skipped: numbers may have gaps. The notifications ride in the same statement
    // (delivered at commit).
    await db.query(
      `WITH lock AS MATERIALIZED (
         SELECT pg_advisory_xact_lock(hashtext($5)) AS held,
                (SELECT count(pg_notify($6, p)) FROM unnest($7::text[]) AS p) AS notified)
       INSERT INTO ${t} AS f (key, fact, revoked_at, expires_at, published_seq)
       SELECT key, fact, revoked_at, expires_at, nextval('${schema}.revocation_publication')
       FROM unnest($1::text[], $2::jsonb[], $3::timestamptz[], $4::timestamptz[])
         AS u(key, fact, revoked_at, expires_at), lock
       ON CONFLICT (key) DO UPDATE SET
         revoked_at = LEAST(f.revoked_at, excluded.revoked_at),
         expires_at = GREATEST(f.expires_at, excluded.expires_at),
         -- a longer life is a new publication
         published_seq = CASE WHEN f.expires_at >= excluded.expires_at THEN f.published_seq ELSE excluded.published_seq END,
         sent = f.sent AND f.expires_at >= excluded.expires_at`,
      [
        keys,
        facts.map((f) => JSON.stringify(f.fact)),
        facts.map((f) => new Date(f.revokedAt)),
        facts.map((f) => new Date(f.expiresAt)),
        t,
        factsChannel(schema),
        [...byTime].flatMap(([at, atKeys]) => factNotifications(atKeys, new Date(at))),
      ],
    );
    for (const [at, atKeys] of byTime) options.recorded?.(atKeys, at);
    const now = Date.now();
    const live = facts.filter((f) => f.expiresAt > now);
    // Not awaited: the record above is what the topic and the stream publish, so a Redis that hangs
    // until its command timeout must not hold each revocation for that long (a burst of them would
    // queue behind it while the heartbeats still vouched for the subscribers' deny-lists).
    if (live.length > 0)
      void options
        .cache()
        .revoke(live.map((f) => ({ key: f.fact.key, ttlSeconds: (f.expiresAt - now) / 1_000 })))
        .then(() => {
          // event time -> in the deny-list; facts already expired (a replay of old events) say nothing about it
          const applied = Date.now();
          for (const at of new Set(live.map((f) => f.revokedAt)))
            propagation().record(Math.max(0, applied - at) / 1_000);
        }, options.cacheFailed);
  };
  return {
    types: REVOKING_EVENT_TYPES,
    apply: (event, tx) => applyRun([event], tx),
    applyRun,
  } satisfies Projection;
};

interface Row {
  published_seq: string;
  fact: FactMessage;
  revoked_at: Date;
  expires_at: Date;
}

const message = (r: Row): FactMessage => ({
  ...r.fact,
  revokedAt: r.revoked_at.toISOString(),
  expiresAt: r.expires_at.toISOString(),
  sequence: Number(r.published_seq),
});

/** Queries over the facts: what introspection checks, what the publisher and the stream send. */
export class FactLog {
  private readonly t: string;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {
    this.t = `${schema}.revocation_facts`;
  }

  /**
   * Which of `keys` are revoked, and since when, whatever their age (the table forgets nothing: a
   * refresh token outlives any TTL).
   */
  async revoked(keys: readonly string[]): Promise<Map<string, Date>> {
    if (keys.length === 0) return new Map();
    const { rows } = await this.pool.query<{ key: string; revoked_at: Date }>(
      `SELECT key, revoked_at FROM ${this.t} WHERE key = ANY($1::text[])`,
      [keys],
    );
    return new Map(rows.map((r) => [r.key, r.revoked_at]));
  }

  /** Facts on the topic (sent) after `sequence`, in order; with `now`, only those still live (the stream's replay). */
  async publishedAfter(sequence: number, now?: Date, limit = 1_000): Promise<FactMessage[]> {
    const { rows } = await this.pool.query<Row>(
      `SELECT published_seq, fact, revoked_at, expires_at FROM ${this.t}
       WHERE published_seq > $1 AND sent AND ($2::timestamptz IS NULL OR expires_at > $2)
       ORDER BY published_seq LIMIT $3`,
      [sequence, now ?? null, limit],
    );
    return rows.map(message);
  }

  /**
   * One round of a publication pass. One statement, under the numbering lock (taken before any number
   * is drawn), numbers the facts left unnumbered (oldest first; normally none, as the projection
   * numbers what it records: rows from before that, or from an older version during a rollout) and
   * reads the numbered facts the topic lacks, in order. It writes nothing when there is nothing to
   * number, so its commit waits for no WAL flush. What it reads is the lowest of the unsent numbers:
   * a number drawn before its snapshot and committed after (while it waited for the lock) is higher
   * than all it sees, and so is every number it draws itself. Those go to `send`, then are marked
   * sent (at least once: a failed `send` is retried at the next pass); what it numbered goes at the
   * next round. Returns how many it sent, and whether more may be left.
   */
  async publish(
    send: (facts: FactMessage[]) => Promise<void>,
    limit = 500,
  ): Promise<{ sent: number; more: boolean }> {
    const { rows } = await this.pool.query<Partial<Row> & { candidates: number; numbered: number }>(
      `WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtext($2)) AS held),
            next AS MATERIALIZED (SELECT id FROM ${this.t}, lock WHERE published_seq IS NULL ORDER BY id LIMIT $1),
            numbered AS (
              UPDATE ${this.t} f SET published_seq = nextval('${this.schema}.revocation_publication')
              FROM next WHERE f.id = next.id AND f.published_seq IS NULL RETURNING f.id),
            unsent AS (
              SELECT published_seq, fact, revoked_at, expires_at FROM ${this.t}, lock
              WHERE NOT sent AND published_seq IS NOT NULL ORDER BY published_seq LIMIT $1)
       SELECT u.*, k.candidates, k.numbered
       FROM (SELECT (SELECT count(*) FROM next)::int AS candidates, (SELECT count(*) FROM numbered)::int AS numbered) k
       LEFT JOIN unsent u ON true ORDER BY u.published_seq`,
      [limit, this.t],
    );
    const { candidates = 0, numbered = 0 } = rows[0] ?? {};
    const facts = rows
      .filter((r): r is Row & { candidates: number; numbered: number } => r.published_seq != null)
      .map(message);
    if (facts.length > 0) {
      await send(facts);
      await this.pool.query(
        // under the numbering lock, as every writer of these rows (a projection's transaction holds it
        // across its statements): no lock cycle over the rows, whatever their order
        `WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtext($2)) AS held)
         UPDATE ${this.t} f SET sent = true FROM lock WHERE f.published_seq = ANY($1::bigint[])`,
        [facts.map((f) => f.sequence), this.t],
      );
    }
    // what it numbered (or another instance did meanwhile) goes next round, on a fresh snapshot
    return { sent: facts.length, more: numbered > 0 || candidates > 0 || facts.length === limit };
  }

  async lastSequence(): Promise<number> {
    const { rows } = await this.pool.query<{ max: string | null }>(
      // the last fact on the topic: the stream passes on what is sent after it (an unsent fact's
      // number, from before a restart, must not be passed over)
      `SELECT max(published_seq) FROM ${this.t} WHERE sent`,
    );
    return Number(rows[0]?.max ?? 0);
  }

  /** Every live fact as a deny-list entry with its remaining lifetime (the rebuild of an emptied cache). */
  async liveRevocations(now: Date): Promise<Revocation[]> {
    const { rows } = await this.pool.query<{ key: string; expires_at: Date }>(
      `SELECT key, expires_at FROM ${this.t} WHERE expires_at > $1`,
      [now],
    );
    return rows.map((r) => ({ key: r.key, ttlSeconds: (r.expires_at.getTime() - now.getTime()) / 1_000 }));
  }
}
