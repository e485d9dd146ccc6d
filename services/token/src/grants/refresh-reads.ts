import { assertSchemaName, type EventStore, toRecordedEvent } from '@grantline/event-store';
import type { RecordedEvent, TokenEvent } from '@grantline/events';
import {
  type EndedSessions,
  type GrantQueries,
  type GrantRecord,
  type GrantRow,
  grantRecordOf,
} from '@grantline/grant-directory';
import { type People, toUser, type UserRecord, type UserRow } from '@grantline/registry-directory';
import type pg from 'pg';
import type { FamilyState } from '../domain/refresh-family.ts';
import type { WideRevocations } from '../projections/wide-revocations.ts';
import { foldFamily, loadFamily } from './refresh-tokens.ts';

/** What a refresh decides on: the family (its first event and the presented generation onwards) and what it hangs on. */
export interface RefreshView {
  state: FamilyState;
  /** the version of the last event folded: the rotation's expected version */
  version: number;
  /** the family's grant and user as this service has projected them (none while the family is unknown) */
  grant?: GrantRecord | undefined;
  user?: UserRecord | undefined;
  /** the admin's latest revocation (ms) of the family's subject or client */
  revokedAt?: number | undefined;
  /** the sign-in the family came from has ended */
  sessionEnded: boolean;
}

/** Reads a refresh's view of a family from the presented generation on. */
export type RefreshReads = (familyId: string, generation: number) => Promise<RefreshView>;

/**
 * The view in one statement: the family's events (its first, and the presented generation onwards)
 * each carrying the grant, the user, the admin's revocations and the ended sign-in its first event
 * names. The events table is the event store's and the others are the read models this service
 * migrates into its own schema (grant-directory, registry-directory, its wide revocations), so one
 * round trip reads them at one snapshot.
 */
export const postgresRefreshReads = (pool: Pick<pg.Pool, 'query'>, schema: string): RefreshReads => {
  const s = assertSchemaName(schema);
  const sql = `
    WITH head AS (
      SELECT data->>'grantId' AS grant_id, data->>'subject' AS subject, data->>'clientId' AS client_id,
        data->>'sessionId' AS session_id
      FROM ${s}.events WHERE stream_id = $1 AND stream_version = 1
    ), looked AS (
      SELECT
        (SELECT to_jsonb(g) FROM ${s}.grants g WHERE g.grant_id = head.grant_id) AS grant_row,
        (SELECT to_jsonb(u) FROM ${s}.users u WHERE u.user_id = head.subject) AS user_row,
        (SELECT max(w.revoked_at) FROM ${s}.wide_revocations w
          WHERE (w.kind = 'subject' AND w.id = head.subject) OR (w.kind = 'client' AND w.id = head.client_id)) AS revoked_at,
        EXISTS (SELECT 1 FROM ${s}.ended_sessions x WHERE x.session_id = head.session_id) AS session_ended
      FROM head
    )
    SELECT e.position, e.event_id, e.stream_id, e.stream_version, e.type, e.data, e.metadata, e.source,
      e.recorded_at, looked.*
    FROM ${s}.events e, looked
    WHERE e.stream_id = $1 AND (e.stream_version = 1 OR e.stream_version >= $2)
    ORDER BY e.stream_version`;
  type Row = Parameters<typeof toRecordedEvent>[0] & {
    grant_row: GrantRow | null;
    user_row: UserRow | null;
    revoked_at: Date | null;
    session_ended: boolean;
  };
  return async (familyId, generation) => {
    // generation g was issued by the event at version g + 1; generation 0 reads the whole family
    const { rows } = await pool.query<Row>(sql, [`refresh-${familyId}`, Math.max(generation, 0) + 1]);
    const first = rows[0];
    const events = rows.map(toRecordedEvent) as RecordedEvent<TokenEvent>[];
    return {
      state: foldFamily(events),
      // the version of the last event folded (see loadFamily)
      version: events.at(-1)?.streamVersion ?? 0,
      grant: first?.grant_row ? grantRecordOf(first.grant_row) : undefined,
      user: first?.user_row ? toUser(first.user_row) : undefined,
      revokedAt: first?.revoked_at?.getTime() ?? undefined,
      sessionEnded: first?.session_ended ?? false,
    };
  };
};

/** The same view through the ports, one read after another: for stores and read models not on one Postgres. */
export const portRefreshReads =
  (deps: {
    store: EventStore;
    grants: GrantQueries;
    people: People;
    revocations: WideRevocations;
    endedSessions?: EndedSessions | undefined;
  }): RefreshReads =>
  async (familyId, generation) => {
    const { state, version } = await loadFamily(deps.store, familyId, generation);
    if (state.status === 'none') return { state, version, sessionEnded: false };
    const [grant, user, revokedAt, sessionEnded] = await Promise.all([
      deps.grants.get(state.grantId),
      deps.people.user(state.subject),
      deps.revocations.revokedAt(state.subject, state.clientId),
      state.sessionId && deps.endedSessions ? deps.endedSessions.has(state.sessionId) : false,
    ]);
    return { state, version, grant, user, revokedAt, sessionEnded };
  };
