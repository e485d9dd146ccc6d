import type { ReadModelMigrations } from '@grantline/event-store';
import { onEvents } from '@grantline/message-bus';
import type pg from 'pg';

/** Sign-ins that ended (`UserLoggedOut` on grantline.grants.v1), for refresh tokens bound to them. */
export const endedSessionsTables: ReadModelMigrations = {
  model: 'ended-sessions',
  migrations: [
    {
      version: 1,
      name: 'ended sessions',
      sql: `
        CREATE TABLE IF NOT EXISTS {schema}.ended_sessions (
          session_id text PRIMARY KEY,
          ended_at timestamptz NOT NULL
        )`,
    },
  ],
};

export const endedSessionsProjection = (schema: string) =>
  onEvents(['UserLoggedOut'], (event, tx) =>
    tx.query(
      `INSERT INTO ${schema}.ended_sessions (session_id, ended_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
      [event.data.sessionId, new Date(event.time)],
    ),
  );

export class EndedSessions {
  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  async has(sessionId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `SELECT 1 FROM ${this.schema}.ended_sessions WHERE session_id = $1`,
      [sessionId],
    );
    return rowCount === 1;
  }
}
