import { randomUUID } from 'node:crypto';
import { type DomainEvent, type EventMetadata, validateEvent } from '@grantline/events';
import { ConcurrencyError } from '../errors.ts';
import type { AppendGuard, AppendResult } from '../port.ts';
import { prepared } from './prepared.ts';

/** One append of a batch: to its own stream, at the version it expects (a number: a stream it read). */
export interface ManyAppend {
  streamId: string;
  expected: number;
  events: readonly DomainEvent[];
  /** as `AppendOptions.newStreams`: recorded with the append, or not at all */
  newStreams?: readonly { streamId: string; event: DomainEvent }[];
  /** as `AppendOptions.guard`; every append of one batch has the same `sql` */
  guard?: AppendGuard;
  /** the trace context of the caller, captured when it asked */
  metadata: EventMetadata;
}

/** What became of one append of a batch: recorded, or the error its own statement would have thrown. */
export type ManyOutcome = { nextExpectedVersion: number; lastPosition: string } | { error: Error };

type Row = {
  ord: string;
  current_version: number;
  guard_held: boolean;
  position: string | null;
  stream_version: number | null;
};

/**
 * The statement that appends a batch: per append, the stream's last version and the transaction that
 * wrote it are read and its guard evaluated (`cur`); the appends whose version and guard hold (`ok`)
 * insert their events and their new streams. It keeps what a single append keeps: the expected
 * version, transaction ids increasing along every stream (see the store), and the guard read with the
 * statement's snapshot. A guard's `$n` reads the n-th guard value of its own append (`item.gn`), passed
 * as text: the guard casts what is not text.
 */
const statementText = (schema: string, guard: string | undefined) => {
  const s = schema;
  const guardColumns = guard ? Math.max(0, ...[...guard.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]))) : 0;
  const columns = Array.from({ length: guardColumns }, (_, i) => i + 1);
  return `
    WITH item AS (
      SELECT * FROM unnest($1::text[], $2::int[]${columns.map((n) => `, $${16 + n}::text[]`).join('')})
        WITH ORDINALITY AS item(stream_id, expected${columns.map((n) => `, g${n}`).join('')}, ord)
    ), cur AS (
      SELECT item.ord, item.stream_id, item.expected, coalesce(l.stream_version, 0) AS version,
        l.transaction_id AS last_xid,
        ${guard ? `(${guard.replace(/\$(\d+)/g, (_, n: string) => `item.g${n}`)})` : 'true'} AS guard_held
      FROM item LEFT JOIN LATERAL (
        SELECT stream_version, transaction_id FROM ${s}.events WHERE stream_id = item.stream_id
        ORDER BY stream_version DESC LIMIT 1) l ON true
    ), ok AS (
      SELECT * FROM cur WHERE cur.version = cur.expected AND cur.guard_held
        AND (cur.last_xid IS NULL OR cur.last_xid <= pg_current_xact_id())
    ), ins AS (
      INSERT INTO ${s}.events (event_id, stream_id, stream_version, type, data, metadata, source, recorded_at)
      SELECT e.id, ok.stream_id, ok.version + e.n, e.type, e.data, e.metadata, $9, $10
      FROM unnest($3::int[], $4::int[], $5::uuid[], $6::text[], $7::jsonb[], $8::jsonb[])
        AS e(item, n, id, type, data, metadata)
      JOIN ok ON ok.ord = e.item
      RETURNING position, stream_id, stream_version
    ), also AS (
      INSERT INTO ${s}.events (event_id, stream_id, stream_version, type, data, metadata, source, recorded_at)
      SELECT n.id, n.stream, 1, n.type, n.data, n.metadata, $9, $10
      FROM unnest($11::int[], $12::uuid[], $13::text[], $14::text[], $15::jsonb[], $16::jsonb[])
        AS n(item, id, stream, type, data, metadata)
      JOIN ok ON ok.ord = n.item
    )
    SELECT cur.ord, cur.version AS current_version, cur.guard_held, ins.position, ins.stream_version
    FROM cur LEFT JOIN ins ON ins.stream_id = cur.stream_id ORDER BY cur.ord, ins.stream_version`;
};

/** A guard value as the statement takes it: text (a date as ISO 8601), or null. */
const asText = (value: unknown): string | null =>
  value === null || value === undefined ? null : value instanceof Date ? value.toISOString() : String(value);

/**
 * The statements of one store, by guard: each prepared once. `run` appends a batch of appends to
 * distinct streams sharing one guard's `sql` in one statement (one round trip, one commit), and says
 * what became of each. A unique violation (another writer took a stream's next version between the
 * statement's read and its insert) fails the statement as a whole: the caller runs those appends one
 * by one instead.
 */
export const manyAppends = (schema: string, source: string) => {
  const statements = new Map<string, ReturnType<typeof prepared>>();
  const statementFor = (guard: string | undefined) => {
    const key = guard ?? '';
    let statement = statements.get(key);
    if (!statement) {
      statement = prepared(statementText(schema, guard));
      statements.set(key, statement);
    }
    return statement;
  };
  return {
    /** the statement and its values for a batch (`items` non-empty and validated, distinct streams, one guard `sql`) */
    query(items: readonly ManyAppend[], now: Date) {
      const guard = items[0]!.guard;
      const events = items.flatMap((item, i) =>
        item.events.map((event, n) => ({ item: i + 1, n: n + 1, event, metadata: item.metadata })),
      );
      const created = items.flatMap((item, i) =>
        (item.newStreams ?? []).map((s) => ({ item: i + 1, ...s, metadata: item.metadata })),
      );
      const guardColumns = guard
        ? Math.max(0, ...[...guard.sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])))
        : 0;
      return {
        ...statementFor(guard?.sql),
        values: [
          items.map((i) => i.streamId),
          items.map((i) => i.expected),
          events.map((e) => e.item),
          events.map((e) => e.n),
          events.map(() => randomUUID()),
          events.map((e) => e.event.type),
          events.map((e) => JSON.stringify(e.event.data)),
          events.map((e) => JSON.stringify(e.metadata)),
          source,
          now,
          created.map((c) => c.item),
          created.map(() => randomUUID()),
          created.map((c) => c.streamId),
          created.map((c) => c.event.type),
          created.map((c) => JSON.stringify(c.event.data)),
          created.map((c) => JSON.stringify(c.metadata)),
          ...Array.from({ length: guardColumns }, (_, g) => items.map((i) => asText(i.guard?.values[g]))),
        ],
      };
    },
    /** each append's outcome from the statement's rows, as a single append would have said it */
    outcomes(items: readonly ManyAppend[], rows: readonly Row[]): ManyOutcome[] {
      const byItem = new Map<number, Row[]>();
      for (const row of rows) {
        const ord = Number(row.ord);
        byItem.set(ord, [...(byItem.get(ord) ?? []), row]);
      }
      return items.map((item, i) => {
        const mine = byItem.get(i + 1) ?? [];
        const first = mine[0];
        const last = mine.at(-1);
        if (!first) return { error: new ConcurrencyError(item.streamId, item.expected, undefined) };
        // a version conflict is said first: the caller retries or treats it as a replay
        if (item.guard && !first.guard_held && first.current_version === item.expected)
          return { error: item.guard.refusal() };
        if (!last || last.position === null || last.stream_version === null)
          return { error: new ConcurrencyError(item.streamId, item.expected, first.current_version) };
        return { nextExpectedVersion: last.stream_version, lastPosition: last.position };
      });
    },
  };
};

const UNIQUE_VIOLATION = '23505';

/**
 * The body of `PostgresEventStore.appendMany`: each append's events validated on its own (an invalid
 * one fails alone), the valid ones in one statement. Should another writer take one of the streams'
 * next version meanwhile (a unique violation fails the statement as a whole), each is appended
 * `alone`, which says which one lost.
 */
export const appendMany = async (
  statements: ReturnType<typeof manyAppends>,
  items: readonly ManyAppend[],
  store: {
    run: (query: ReturnType<ReturnType<typeof manyAppends>['query']>) => Promise<{ rows: Row[] }>;
    now: () => Date;
    /** what the batch recorded: how many events */
    recorded: (count: number) => void;
    alone: ((item: ManyAppend) => Promise<AppendResult>) | undefined;
  },
): Promise<ManyOutcome[]> => {
  const outcomes: ManyOutcome[] = items.map(() => ({ error: new Error('not appended') }));
  const valid: number[] = [];
  for (const [i, item] of items.entries()) {
    try {
      for (const event of [...item.events, ...(item.newStreams ?? []).map((n) => n.event)])
        validateEvent(event);
      valid.push(i);
    } catch (error) {
      outcomes[i] = { error: error as Error };
    }
  }
  const batch = valid.map((i) => items[i]!);
  if (batch.length === 0) return outcomes;
  let answered: ManyOutcome[];
  try {
    const { rows } = await store.run(statements.query(batch, store.now()));
    answered = statements.outcomes(batch, rows);
    store.recorded(
      batch.reduce(
        (n, item, k) =>
          n + ('error' in answered[k]! ? 0 : item.events.length + (item.newStreams?.length ?? 0)),
        0,
      ),
    );
  } catch (error) {
    const alone = store.alone;
    if ((error as { code?: string }).code !== UNIQUE_VIOLATION || !alone) throw error;
    answered = await Promise.all(
      batch.map((item) =>
        alone(item).then(
          ({ nextExpectedVersion, lastPosition }): ManyOutcome => ({ nextExpectedVersion, lastPosition }),
          (e: unknown): ManyOutcome => ({ error: e as Error }),
        ),
      ),
    );
  }
  valid.forEach((i, k) => {
    outcomes[i] = answered[k]!;
  });
  return outcomes;
};
