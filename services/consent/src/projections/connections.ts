import type { Queryable, ReadModelMigrations } from '@grantline/event-store';
import { type ConsumedEvent, type Projection, typedEvent } from '@grantline/message-bus';
import type pg from 'pg';

/**
 * When each grant was last used: the last time the token service issued an access token under it.
 * Each such token comes with an event that names the grant: `CodeRedeemed` (the code's redemption)
 * or `RefreshTokenRotated` (a refresh). Those are read, not `AccessTokenIssued`: most access tokens
 * are client credentials of no grant, and this way the consumer passes every `AccessTokenIssued` over
 * by its type header, unopened. Idempotent: a redelivered or late event never moves the time back.
 */
export const grantUsageTables: ReadModelMigrations = {
  model: 'grant-usage',
  migrations: [
    {
      version: 1,
      name: 'grant usage',
      sql: `
        CREATE TABLE IF NOT EXISTS {schema}.grant_usage (
          grant_id text PRIMARY KEY,
          last_used_at timestamptz NOT NULL
        )`,
    },
  ],
};

/**
 * Idempotent by itself (`applyRun`): a run of events is one statement in autocommit, with no
 * processed-events row: a refresh's use of its grant costs the consumer one statement per run of the
 * topic, not a statement and a ledger row per event. One row per grant (an upsert may touch a row
 * once), in grant order (concurrent runs lock rows in one order).
 */
export const grantUsageProjection = (schema: string): Projection => {
  const types = ['CodeRedeemed', 'RefreshTokenRotated'] as const;
  const applyRun = async (events: readonly ConsumedEvent[], db: Queryable) => {
    const latest = new Map<string, number>();
    for (const event of events) {
      const typed = typedEvent(event, types);
      if (!typed) continue;
      const at = Date.parse(typed.time);
      latest.set(typed.data.grantId, Math.max(at, latest.get(typed.data.grantId) ?? at));
    }
    if (latest.size === 0) return;
    const grants = [...latest.keys()].sort();
    await db.query(
      `INSERT INTO ${schema}.grant_usage AS u (grant_id, last_used_at)
       SELECT * FROM unnest($1::text[], $2::timestamptz[])
       ON CONFLICT (grant_id) DO UPDATE SET last_used_at = GREATEST(u.last_used_at, excluded.last_used_at)`,
      [grants, grants.map((g) => new Date(latest.get(g)!))],
    );
  };
  return { types, apply: (event, tx) => applyRun([event], tx), applyRun };
};

/** One of the user's active grants as the account page shows it (ids; names are the registry's). */
export interface ConnectionRow {
  grantId: string;
  clientId: string;
  scopes: string[];
  organisations: string[];
  connectedAt: Date;
  lastUsedAt: Date | undefined;
}

/**
 * The signed-in user's connections: their active grants (the grants read model) with when each
 * was last used, oldest app first and, within an app, oldest grant first.
 */
export class ConnectionQueries {
  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  async activeOf(subject: string): Promise<ConnectionRow[]> {
    const { rows } = await this.pool.query<{
      grant_id: string;
      client_id: string;
      scopes: string[];
      organisations: string[];
      created_at: Date;
      last_used_at: Date | null;
    }>(
      `SELECT g.grant_id, g.client_id, g.scopes, g.organisations, g.created_at, u.last_used_at
       FROM ${this.schema}.grants g LEFT JOIN ${this.schema}.grant_usage u USING (grant_id)
       WHERE g.subject = $1 AND g.status = 'active' AND cardinality(g.organisations) > 0
       ORDER BY min(g.created_at) OVER (PARTITION BY g.client_id), g.client_id, g.created_at`,
      [subject],
    );
    return rows.map((r) => ({
      grantId: r.grant_id,
      clientId: r.client_id,
      scopes: r.scopes,
      organisations: r.organisations,
      connectedAt: r.created_at,
      lastUsedAt: r.last_used_at ?? undefined,
    }));
  }
}
