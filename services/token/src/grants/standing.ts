import {
  type AppendGuard,
  EVENT_COLUMNS,
  type EventRow,
  prepared,
  type ReadModelMigrations,
  toRecordedEvent,
} from '@grantline/event-store';
import type { RecordedEvent, TokenEvent } from '@grantline/events';
import type { GrantRecord } from '@grantline/grant-directory';
import type { Projection } from '@grantline/message-bus';
import { InvalidGrant } from '@grantline/oauth';
import type { UserRecord } from '@grantline/registry-directory';
import type pg from 'pg';

/** What a refresh token family or an authorization code names: the grant, the user, the client, the sign-in. */
export interface Names {
  grantId: string;
  subject: string;
  clientId: string;
  sessionId?: string | undefined;
}

/**
 * Where what a family or a code names stands, as this service has projected it: the grant and the
 * user (undefined while a projection has not seen them), the admin's latest revocation of the
 * subject or the client (ms), and whether the sign-in ended.
 */
export interface Standing {
  grant: GrantRecord | undefined;
  user: UserRecord | undefined;
  revokedAt: number | undefined;
  sessionEnded: boolean;
}

/** What refuses a family or a code: the grant's status and the admin's latest revocation (ms). */
export interface Revocation {
  grantStatus: GrantRecord['status'] | undefined;
  revokedAt: number | undefined;
}

/**
 * The reads of the code and refresh grants, each one round trip: the family's events with the
 * standing of what its first event names; the standing of what a code names; and the condition the
 * token is recorded under.
 */
export interface StandingReads {
  /** the family's first event and its events from version `fromVersion` on, with the standing of what it names */
  family(
    streamId: string,
    fromVersion: number,
  ): Promise<{ events: RecordedEvent<TokenEvent>[]; standing: Standing | undefined }>;
  of(names: Names): Promise<Standing>;
  /**
   * F10, a revocation racing the request: the condition its recording statement is made under (the
   * grant not revoked, no admin revocation of the subject or the client at or after `since`), checked
   * with that statement's snapshot. With `waitingOutAppends` (and its gate) on the projections that apply
   * revocations, what is handed out was recorded before this service's projection applied the
   * revocation, and nothing is recorded after it.
   */
  stillGranted(names: Names, since: number): AppendGuard;
}

/**
 * F10, the other half. The guard reads with its statement's snapshot; so every guarded append also
 * takes `ROW SHARE` on `append_gate` (an empty table nothing writes), which Postgres takes with the
 * statement's other locks, before its snapshot, and holds to its commit. A projection that applies a
 * revocation (of `types`) takes the gate in `EXCLUSIVE` mode to its own commit: that waits out every
 * guarded append already running (it commits first, before the revocation is acknowledged) and makes
 * the ones arriving meanwhile wait, then see the revocation. The gate is its own table so that
 * nothing else queues: not vacuum or analyze of the events table, not the appends without a guard
 * (client credentials, revocation).
 */
export const appendGateTables: ReadModelMigrations = {
  model: 'append-gate',
  migrations: [
    {
      version: 1,
      name: 'the gate between guarded appends and revocations',
      sql: 'CREATE TABLE IF NOT EXISTS {schema}.append_gate (never boolean)',
    },
  ],
};

export const waitingOutAppends = (
  schema: string,
  projection: Projection,
  types: readonly string[],
): Projection => ({
  ...projection,
  apply: async (event, tx) => {
    await projection.apply(event, tx);
    if (types.includes(event.type)) await tx.query(`LOCK TABLE ${schema}.append_gate IN EXCLUSIVE MODE`);
  },
});

/** Refused by the guard: the grant or the admin's revocation landed while the request was in flight. */
export const revokedInFlight = () =>
  new InvalidGrant('the grant was revoked while this token was being issued');

/**
 * Refuses (`invalid_grant`) what this service has learnt was revoked: the grant itself, or
 * everything of the subject or the client that began at or before an admin revocation (`since`:
 * when the family began, or when the code was issued). A grant this service has not projected yet
 * passes here; the callers deal with it (refresh waits for it, a code carries what consent signed).
 */
export const refuseRevoked = (revocation: Revocation, since: number): void => {
  if (revocation.grantStatus === 'revoked') throw new InvalidGrant('the grant has been revoked');
  if (revocation.revokedAt !== undefined && since <= revocation.revokedAt)
    throw new InvalidGrant("the administrator revoked the user's or the client's tokens");
};

type StandingRow = {
  grant: GrantRecord | null;
  /** `credentialsChangedAt` in ms since the epoch: a number, never a text to parse */
  user: (Omit<UserRecord, 'credentialsChangedAt'> & { credentialsChangedAt: number | null }) | null;
  revoked_at: Date | null;
  session_ended: boolean;
};

const toStanding = (row: StandingRow): Standing => ({
  grant: row.grant ?? undefined,
  user: row.user
    ? {
        ...row.user,
        credentialsChangedAt: row.user.credentialsChangedAt
          ? new Date(row.user.credentialsChangedAt)
          : undefined,
      }
    : undefined,
  revokedAt: row.revoked_at?.getTime() ?? undefined,
  sessionEnded: row.session_ended,
});

/**
 * The reads on the token service's own schema, where its event store, the grants and people read
 * models, the admin's wide revocations and the ended sign-ins live side by side: what took five
 * queries in three round trips before a refresh could rotate is one statement (docs/adr/0006).
 */
export const postgresStandingReads = (
  pool: Pick<pg.Pool, 'query'>,
  schema: string,
  /** whether a family dies with the sign-in it came from */
  options: { endedSessions: boolean },
): StandingReads => {
  const s = schema;
  // the standing of the row `names` (grant_id, subject, client_id, session_id)
  const standing = `
    (SELECT json_build_object('grantId', g.grant_id, 'subject', g.subject, 'clientId', g.client_id,
        'scopes', g.scopes, 'organisations', g.organisations, 'status', g.status)
       FROM ${s}.grants g WHERE g.grant_id = names.grant_id) AS grant,
    (SELECT json_build_object('userId', u.user_id, 'username', u.username, 'status', u.status,
        'organisations', u.organisations,
        'credentialsChangedAt', (extract(epoch FROM u.credentials_changed_at) * 1000)::float8)
       FROM ${s}.users u WHERE u.user_id = names.subject) AS user,
    (SELECT max(w.revoked_at) FROM ${s}.wide_revocations w
       WHERE (w.kind = 'subject' AND w.id = names.subject) OR (w.kind = 'client' AND w.id = names.client_id)) AS revoked_at,
    ${options.endedSessions ? `EXISTS (SELECT 1 FROM ${s}.ended_sessions e WHERE e.session_id = names.session_id)` : 'false'} AS session_ended`;
  const familySql = prepared(`
    WITH family AS (
      SELECT ${EVENT_COLUMNS} FROM ${s}.events WHERE stream_id = $1 AND (stream_version >= $2 OR stream_version = 1)
    ), names AS (
      SELECT data->>'grantId' AS grant_id, data->>'subject' AS subject, data->>'clientId' AS client_id,
        data->>'sessionId' AS session_id
      FROM family WHERE stream_version = 1
    ), standing AS MATERIALIZED ( -- once, not once per event row
      SELECT ${standing} FROM names)
    SELECT family.*, standing.* FROM family CROSS JOIN standing ORDER BY family.stream_version`);
  const namesSql = prepared(`
    SELECT ${standing}
    FROM (SELECT $1::text AS grant_id, $2::text AS subject, $3::text AS client_id, $4::text AS session_id) names`);
  // the gate's lock comes with the statement's (NOT EXISTS over an empty table: always true);
  // coalesce: a guard that is not true refuses
  const stillGrantedSql = `coalesce(
    NOT EXISTS (SELECT 1 FROM ${s}.append_gate FOR SHARE)
    AND NOT EXISTS (SELECT 1 FROM ${s}.grants WHERE grant_id = $1 AND status = 'revoked')
    AND NOT EXISTS (SELECT 1 FROM ${s}.wide_revocations
      WHERE ((kind = 'subject' AND id = $2) OR (kind = 'client' AND id = $3)) AND revoked_at >= $4), false)`;

  return {
    async family(streamId, fromVersion) {
      // Postgres text cannot hold NUL: no stream has one in its id (a family id is validated anyway)
      if (streamId.includes('\u0000')) return { events: [], standing: undefined };
      const { rows } = await pool.query<EventRow & StandingRow>({
        ...familySql,
        values: [streamId, fromVersion],
      });
      const first = rows[0];
      return {
        events: rows.map(toRecordedEvent) as RecordedEvent<TokenEvent>[],
        standing: first && toStanding(first),
      };
    },
    async of(names) {
      const { rows } = await pool.query<StandingRow>({
        ...namesSql,
        values: [names.grantId, names.subject, names.clientId, names.sessionId ?? null],
      });
      return toStanding(rows[0]!);
    },
    stillGranted: (names, since) => ({
      sql: stillGrantedSql,
      values: [names.grantId, names.subject, names.clientId, new Date(since)],
      refusal: revokedInFlight,
    }),
  };
};
