import { randomUUID } from 'node:crypto';
import { type DomainEvent, validateEvent } from '@grantline/events';
import type pg from 'pg';
import { ConcurrencyError } from '../errors.ts';
import type { AppendResult, StreamAppend } from '../port.ts';
import { EVENT_COLUMNS, type EventRow, toRecordedEvent } from './store.ts';

type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

const UNIQUE_VIOLATION = '23505';

/**
 * Several streams appended by one statement: each stream's last version and writing transaction
 * are read, and the events are inserted only if every stream is where its caller expected it (and
 * no stream was last written by a newer transaction, as in the single-stream append). A writer that
 * takes one of the versions between the read and the insert makes the unique (stream, version)
 * constraint refuse the whole statement, so a race is still decided by the store.
 */
export const appendManySql = (schema: string) => `
  WITH req AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::integer[]) WITH ORDINALITY AS r(stream_id, mode, expected, ord)
  ), cur AS (
    SELECT req.*, coalesce(last.stream_version, 0) AS version,
      CASE req.mode
        WHEN 'any' THEN true
        WHEN 'no_stream' THEN last.stream_version IS NULL
        WHEN 'stream_exists' THEN last.stream_version IS NOT NULL
        ELSE coalesce(last.stream_version, 0) = req.expected END
      AND (last.transaction_id IS NULL OR last.transaction_id <= pg_current_xact_id()) AS ok
    FROM req LEFT JOIN LATERAL (
      SELECT stream_version, transaction_id FROM ${schema}.events e WHERE e.stream_id = req.stream_id
      ORDER BY stream_version DESC LIMIT 1
    ) last ON true
  ), ins AS (
    INSERT INTO ${schema}.events (event_id, stream_id, stream_version, type, data, metadata, source, recorded_at)
    SELECT e.id, e.stream_id, cur.version + e.n, e.type, e.data, $11::jsonb, $9, $10
    FROM unnest($4::uuid[], $5::text[], $6::integer[], $7::text[], $8::jsonb[]) WITH ORDINALITY
      AS e(id, stream_id, n, type, data, ord)
    JOIN cur ON cur.stream_id = e.stream_id
    WHERE NOT EXISTS (SELECT 1 FROM cur WHERE NOT cur.ok)
    ORDER BY e.ord
    RETURNING ${EVENT_COLUMNS}
  )
  SELECT cur.stream_id AS requested_stream, cur.version AS current_version, cur.ok, ins.*
  FROM cur LEFT JOIN ins ON ins.stream_id = cur.stream_id
  ORDER BY cur.ord, ins.stream_version`;

type Row = EventRow & { requested_stream: string; current_version: number; ok: boolean };

/** Runs the statement (its SQL from `appendManySql`) and shapes its rows into the port's results. */
export const runAppendMany = async (
  db: Queryable,
  sql: string,
  appends: readonly StreamAppend[],
  context: { schema: string; metadata: string; source: string; now: Date; inTransaction: boolean },
): Promise<AppendResult[]> => {
  if (appends.length === 0) throw new Error('appendMany needs at least one stream');
  if (new Set(appends.map((a) => a.streamId)).size !== appends.length)
    throw new Error('appendMany takes each stream once');
  const events = appends.flatMap((a) => {
    if (a.events.length === 0) throw new Error(`append to ${a.streamId} needs at least one event`);
    return a.events.map((event, i) => ({ streamId: a.streamId, n: i + 1, event: validateEvent(event) }));
  });
  const params = [
    appends.map((a) => a.streamId),
    appends.map((a) => (typeof a.expected === 'number' ? 'exact' : a.expected)),
    appends.map((a) => (typeof a.expected === 'number' ? a.expected : null)),
    events.map(() => randomUUID()),
    events.map((e) => e.streamId),
    events.map((e) => e.n),
    events.map((e) => e.event.type),
    events.map((e) => JSON.stringify((e.event as DomainEvent).data)),
    context.source,
    context.now,
    context.metadata,
  ];
  let rows: Row[];
  // inside a caller's transaction a savepoint keeps a lost race from aborting it (as `append` does)
  if (context.inTransaction) await db.query('SAVEPOINT grantline_append');
  try {
    ({ rows } = await db.query<Row>(sql, params));
    if (context.inTransaction) await db.query('RELEASE SAVEPOINT grantline_append');
  } catch (error) {
    if (context.inTransaction) await db.query('ROLLBACK TO SAVEPOINT grantline_append');
    if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
    // another writer took a version between the read and the insert: name a stream it moved
    const { rows: now } = await db.query<{ stream_id: string; v: number }>(
      `SELECT stream_id, max(stream_version) AS v FROM ${context.schema}.events WHERE stream_id = ANY($1) GROUP BY stream_id`,
      [appends.map((a) => a.streamId)],
    );
    const versions = new Map(now.map((r) => [r.stream_id, r.v]));
    const moved = appends.find((a) => !holds(a.expected, versions.get(a.streamId) ?? 0)) ?? appends[0]!;
    throw new ConcurrencyError(moved.streamId, moved.expected, versions.get(moved.streamId) ?? 0);
  }
  const refused = rows.find((r) => !r.ok);
  if (refused) {
    const append = appends.find((a) => a.streamId === refused.requested_stream)!;
    throw new ConcurrencyError(append.streamId, append.expected, refused.current_version);
  }
  return appends.map((a) => {
    const recorded = rows.filter((r) => r.requested_stream === a.streamId).map(toRecordedEvent);
    const last = recorded.at(-1);
    if (!last) throw new ConcurrencyError(a.streamId, a.expected, undefined);
    return { nextExpectedVersion: last.streamVersion, lastPosition: last.position, events: recorded };
  });
};

const holds = (expected: StreamAppend['expected'], version: number) =>
  expected === 'any' ||
  (expected === 'no_stream' && version === 0) ||
  (expected === 'stream_exists' && version > 0) ||
  expected === version;
