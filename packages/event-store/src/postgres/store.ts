import { randomUUID } from 'node:crypto';
import { type Clock, systemClock } from '@grantline/clock';
import { type DomainEvent, type EventMetadata, type RecordedEvent, validateEvent } from '@grantline/events';
import { ATTRS, lazyInstruments, METRICS, SPANS } from '@grantline/telemetry';
import { context, propagation, SpanStatusCode, trace } from '@opentelemetry/api';
import type pg from 'pg';
import { ConcurrencyError } from '../errors.ts';
import type {
  AppendGuard,
  AppendOptions,
  AppendResult,
  EventStore,
  ExpectedVersion,
  ReadStreamResult,
} from '../port.ts';
import { withRetry } from '../retry.ts';
import { assertSchemaName } from './migrations.ts';
import { prepared } from './prepared.ts';
import { type LocalRelay, RelayWakeUp } from './wake-up.ts';

export type { LocalRelay } from './wake-up.ts';

type Statement = ReturnType<typeof prepared>;

export interface EventRow {
  position: string;
  event_id: string;
  stream_id: string;
  stream_version: number;
  type: string;
  data: unknown;
  metadata: EventMetadata;
  source: string;
  recorded_at: Date;
}

export const EVENT_COLUMNS =
  'position, event_id, stream_id, stream_version, type, data, metadata, source, recorded_at';

export const toRecordedEvent = (row: EventRow): RecordedEvent => ({
  id: row.event_id,
  type: row.type,
  data: row.data,
  streamId: row.stream_id,
  streamVersion: row.stream_version,
  position: row.position,
  time: row.recorded_at,
  source: row.source,
  metadata: row.metadata,
});

/** What runs a statement: a pool (autocommit) or a client in a transaction. */
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

/**
 * The transaction a store made by `transaction` appends in. Not exported: every transaction that
 * appends events must begin as `transaction` begins it, locking the events table before it has a
 * transaction id, or the relay's gate could pass over it.
 */
class InTransaction {
  constructor(
    readonly client: pg.PoolClient,
    readonly wake: RelayWakeUp,
  ) {}
}

export interface PostgresEventStoreOptions {
  pool: pg.Pool;
  /** the service's own Postgres schema (migrated with `migrate`) */
  schema: string;
  /** CloudEvents `source` of the events this store records, e.g. `/grantline/consent` */
  source: string;
  /**
   * what an event's `time` (`recorded_at`) reads: it is domain time (a refresh token family's age is
   * its events' times), so it comes from the service's clock, not the database's (default: the system clock)
   */
  clock?: Clock;
  /** this process's relay of the schema, woken in process while it leads (NOTIFY otherwise) */
  relay?: LocalRelay;
  /**
   * how many writes are worth having in flight at once (`GroupCommit`'s default): 4 on a server, so
   * Postgres groups their commits; 1 where the database runs one statement at a time (PGlite)
   */
  concurrentWrites?: number;
}

const tracer = trace.getTracer('@grantline/event-store');
const instruments = lazyInstruments('@grantline/event-store', (meter) => ({
  appended: meter.createCounter(METRICS.eventsAppended, { description: 'events appended' }),
  appendDuration: meter.createHistogram(METRICS.appendDuration, { unit: 's' }),
}));

const UNIQUE_VIOLATION = '23505';

/** Trace context of the active span, so consumers continue the trace of the command that caused an event. */
export const activeTraceContext = (): EventMetadata => {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return {
    ...(carrier.traceparent && { traceparent: carrier.traceparent }),
    ...(carrier.tracestate && { tracestate: carrier.tracestate }),
  };
};

/** Whether the stream's version is what the append expected. */
const expectedHolds = (expected: ExpectedVersion, version: number): boolean =>
  expected === 'any' ||
  (expected === 'no_stream' && version === 0) ||
  (expected === 'stream_exists' && version > 0) ||
  expected === version;

/**
 * Event store on Postgres. One statement appends a batch to a stream: it reads the stream's last
 * version and the transaction that wrote it, and inserts only if the expected version matches and that
 * transaction is not newer than the current one. The second check keeps transaction ids increasing
 * along every stream, so publishing in (transaction id, position) order keeps per-stream order.
 */
export class PostgresEventStore implements EventStore {
  readonly schema: string;
  readonly concurrentWrites: number;
  private readonly db: Queryable;
  private readonly appendSql: Statement;
  private readonly appendText: (guard?: string) => string;
  private readonly guardedSql = new Map<string, Statement>();
  private readonly readSql: Statement;
  private readonly readWithFirstSql: Statement;
  private readonly newStreamsSql: Statement;
  private readonly currentVersionSql: Statement;

  private readonly wake: RelayWakeUp;
  /** inside `transaction`: the relay is woken after the commit, not after each append */
  private readonly inTransaction: boolean;

  constructor(
    private readonly options: PostgresEventStoreOptions,
    /** inside `transaction` only: a transaction begun elsewhere has not locked the table (see the relay) */
    bound?: InTransaction,
  ) {
    // no look-alike object: only `transaction` makes one
    if (bound !== undefined && !(bound instanceof InTransaction))
      throw new TypeError('not a store transaction');
    this.db = bound?.client ?? options.pool;
    this.inTransaction = bound !== undefined;
    this.schema = assertSchemaName(options.schema);
    this.concurrentWrites = options.concurrentWrites ?? 4;
    this.wake = bound?.wake ?? new RelayWakeUp(options.pool, `${this.schema}_events`, options.relay);
    const s = this.schema;
    // the append, and under a guard (its parameters follow the append's 13)
    this.appendText = (guard = '') => `
      WITH last AS (
        SELECT stream_version, transaction_id FROM ${s}.events WHERE stream_id = $1
        ORDER BY stream_version DESC LIMIT 1
      ), cur AS (
        SELECT coalesce((SELECT stream_version FROM last), 0) AS version, (SELECT transaction_id FROM last) AS last_xid,
          ${guard ? `(${guard})` : 'true'} AS guard_held
      ), ins AS (
        INSERT INTO ${s}.events (event_id, stream_id, stream_version, type, data, metadata, source, recorded_at)
        SELECT e.id, $1, cur.version + e.ord, e.type, e.data, e.metadata, $8, $9
        FROM cur, unnest($2::uuid[], $3::text[], $4::jsonb[], $5::jsonb[]) WITH ORDINALITY AS e(id, type, data, metadata, ord)
        WHERE CASE $6::text
                WHEN 'any' THEN true
                WHEN 'no_stream' THEN cur.version = 0
                WHEN 'stream_exists' THEN cur.version > 0
                ELSE cur.version = $7::integer END
          AND (cur.last_xid IS NULL OR cur.last_xid <= pg_current_xact_id()) AND cur.guard_held
        RETURNING ${EVENT_COLUMNS}
      ), also AS (
        INSERT INTO ${s}.events (event_id, stream_id, stream_version, type, data, metadata, source, recorded_at)
        SELECT n.id, n.stream, 1, n.type, n.data, $5[1], $8, $9
        FROM unnest($10::uuid[], $11::text[], $12::text[], $13::jsonb[]) AS n(id, stream, type, data)
        WHERE EXISTS (SELECT 1 FROM ins)
      )
      SELECT cur.version AS current_version, cur.guard_held, ins.* FROM cur LEFT JOIN ins ON true ORDER BY ins.stream_version`;
    this.appendSql = prepared(this.appendText());
    this.readSql = prepared(
      `SELECT ${EVENT_COLUMNS} FROM ${s}.events WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version LIMIT $3`,
    );
    this.readWithFirstSql = prepared(
      `SELECT ${EVENT_COLUMNS} FROM ${s}.events WHERE stream_id = $1 AND (stream_version >= $2 OR stream_version = 1) ORDER BY stream_version LIMIT $3`,
    );
    this.newStreamsSql = prepared(
      `INSERT INTO ${s}.events (event_id, stream_id, stream_version, type, data, metadata, source, recorded_at)
       SELECT e.id, e.stream, 1, e.type, e.data, e.metadata, $6, $7
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[]) AS e(id, stream, type, data, metadata)`,
    );
    this.currentVersionSql = prepared(
      `SELECT coalesce(max(stream_version), 0) AS v FROM ${s}.events WHERE stream_id = $1`,
    );
  }

  /** Runs `work` in one transaction; every append through the given store commits or rolls back together. */
  async transaction<T>(work: (store: PostgresEventStore, client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.options.pool.connect();
    try {
      // the relay's gate counts this transaction as a writer from here, before it has a transaction id
      await client.query(`BEGIN; LOCK TABLE ${this.schema}.events IN ROW EXCLUSIVE MODE`);
      const result = await work(
        new PostgresEventStore(this.options, new InTransaction(client, this.wake)),
        client,
      );
      await client.query('COMMIT');
      this.wake.poke();
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async append<E extends DomainEvent>(
    streamId: string,
    expected: ExpectedVersion,
    events: readonly E[],
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    if (events.length === 0) throw new Error('append needs at least one event');
    const valid = events.map(validateEvent);
    const metadata = JSON.stringify({ ...activeTraceContext(), ...options.metadata });
    const mode = typeof expected === 'number' ? 'exact' : expected;
    const newStreams = options.newStreams ?? [];
    // `any` retries a lost race for the stream's next version; a new stream that exists would fail every retry
    if (newStreams.length > 0 && expected === 'any')
      throw new Error('newStreams needs an expected version, not any');
    const newEvents = newStreams.map((n) => validateEvent(n.event));
    const params = [
      streamId,
      valid.map(() => randomUUID()),
      valid.map((e) => e.type),
      valid.map((e) => JSON.stringify(e.data)),
      valid.map(() => metadata),
      mode,
      typeof expected === 'number' ? expected : null,
      this.options.source,
      this.now(),
      newEvents.map(() => randomUUID()),
      newStreams.map((n) => n.streamId),
      newEvents.map((e) => e.type),
      newEvents.map((e) => JSON.stringify(e.data)),
    ];
    const started = performance.now();
    return tracer.startActiveSpan(
      SPANS.append,
      { attributes: { [ATTRS.stream]: streamId } },
      async (span) => {
        try {
          // `any` cannot conflict on the version it expects, only lose a race for the next one: try
          // again, unless in a transaction, which the lost race has ended.
          const run = () => this.insert(streamId, expected, params, options.guard);
          const result =
            expected === 'any' && !this.inTransaction ? await withRetry(run, { attempts: 20 }) : await run();
          if (!this.inTransaction) this.wake.poke();
          const { appended, appendDuration } = instruments();
          appended.add(result.events.length + newStreams.length);
          appendDuration.record((performance.now() - started) / 1000);
          return result;
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          throw error;
        } finally {
          span.end();
        }
      },
    );
  }

  /**
   * Appends each event as version 1 of a new stream, all in one statement: the write path of
   * `GroupCommit`. Fails as a whole with a ConcurrencyError if any stream already exists.
   */
  async appendToNewStreams(
    items: readonly { streamId: string; event: DomainEvent; metadata?: EventMetadata }[],
  ): Promise<void> {
    if (items.length === 0) return;
    const valid = items.map((i) => validateEvent(i.event));
    try {
      await this.db.query({
        ...this.newStreamsSql,
        values: [
          valid.map(() => randomUUID()),
          items.map((i) => i.streamId),
          valid.map((e) => e.type),
          valid.map((e) => JSON.stringify(e.data)),
          // each caller's own trace context: one statement writes many callers' events
          items.map((i) => JSON.stringify(i.metadata ?? activeTraceContext())),
          this.options.source,
          this.now(),
        ],
      });
    } catch (error) {
      if ((error as { code?: string }).code === UNIQUE_VIOLATION) {
        throw new ConcurrencyError(items.map((i) => i.streamId).join(','), 'no_stream', undefined);
      }
      throw error;
    }
    if (!this.inTransaction) this.wake.poke();
    instruments().appended.add(items.length);
  }

  private async insert(
    streamId: string,
    expected: ExpectedVersion,
    params: unknown[],
    guard?: AppendGuard,
  ): Promise<AppendResult> {
    let rows: (EventRow & { current_version: number; guard_held: boolean })[];
    const statement = guard ? this.guarded(guard.sql, params.length) : this.appendSql;
    try {
      ({ rows } = await this.db.query<EventRow & { current_version: number; guard_held: boolean }>({
        ...statement,
        values: guard ? [...params, ...guard.values] : params,
      }));
    } catch (error) {
      if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
      // Another writer took the next version between our read and our insert. Inside a caller's
      // transaction the conflict has aborted it (no savepoint per append: that would be two more round
      // trips on every transactional append, and no caller continues a transaction after a conflict):
      // the version cannot be read, and the caller retries the whole transaction or gives up.
      if (this.inTransaction)
        throw new ConcurrencyError(streamId, expected, undefined, { transactionEnded: true });
      throw new ConcurrencyError(streamId, expected, await this.currentVersion(streamId));
    }
    const first = rows[0];
    // a version conflict is said first: the caller retries or, for a spent code, treats it as a replay
    if (guard && first?.guard_held === false && expectedHolds(expected, first.current_version))
      throw guard.refusal();
    if (!first || first.position === null) {
      throw new ConcurrencyError(streamId, expected, first?.current_version ?? 0);
    }
    const recorded = rows.map(toRecordedEvent);
    const last = recorded[recorded.length - 1]!;
    return { nextExpectedVersion: last.streamVersion, lastPosition: last.position, events: recorded };
  }

  /** the append under a guard, its `$n` after the append's parameters (the guard's text has no other `$`) */
  private guarded(sql: string, offset: number): Statement {
    let statement = this.guardedSql.get(sql);
    if (!statement) {
      statement = prepared(
        this.appendText(sql.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`)),
      );
      this.guardedSql.set(sql, statement);
    }
    return statement;
  }

  private now(): Date {
    return new Date((this.options.clock ?? systemClock).now());
  }

  private async currentVersion(streamId: string): Promise<number> {
    const { rows } = await this.db.query<{ v: number }>({ ...this.currentVersionSql, values: [streamId] });
    return rows[0]?.v ?? 0;
  }

  async readStream<E extends DomainEvent = DomainEvent>(
    streamId: string,
    options: { fromVersion?: number; maxCount?: number; withFirst?: boolean } = {},
  ): Promise<ReadStreamResult<E>> {
    // Postgres text cannot hold NUL, so no stream has one in its id: an id from hostile input is empty
    if (streamId.includes('\u0000')) return { currentVersion: 0, events: [] };
    const from = options.fromVersion ?? 1;
    // the first event comes on top of what was asked for, not in place of one of them
    const first = options.withFirst === true && from > 1;
    const limit = options.maxCount === undefined ? null : options.maxCount + (first ? 1 : 0);
    const { rows } = await this.db.query<EventRow>({
      ...(first ? this.readWithFirstSql : this.readSql),
      values: [streamId, from, limit],
    });
    const events = rows.map(toRecordedEvent) as RecordedEvent<E>[];
    const asked = first ? events.filter((e) => e.streamVersion >= from) : events;
    const last = asked[asked.length - 1];
    const cut = options.maxCount !== undefined && asked.length === options.maxCount;
    const currentVersion =
      last && !cut ? last.streamVersion : !last && from <= 1 ? 0 : await this.currentVersion(streamId);
    return { currentVersion, events };
  }
}
