import type { DomainEvent, EventMetadata } from '@grantline/events';
import type { ManyAppend, ManyOutcome } from './postgres/append-many.ts';
import { activeTraceContext, type PostgresEventStore } from './postgres/store.ts';

interface Pending<A, R> {
  input: A;
  resolve: (result: R) => void;
  reject: (e: unknown) => void;
}

/**
 * Calls that each need one statement, made as one statement for many: calls arriving while
 * statements are in flight are run together by the next one. No timer, so no added latency when
 * idle; under load one round trip (and, for a write, one commit) serves many requests, and up to
 * `maxInFlight` statements overlap so Postgres can group their commits too. With `afterTurn` (PGlite,
 * which runs a statement on this thread, so nothing else arrives while one runs: a statement started
 * at once would hold one call) a statement starts after the event loop's turn instead, with every
 * call the turn's other requests made.
 *
 * `run` answers each input in order, or fails, and then every call of the batch fails with it.
 */
export class Batched<A, R> {
  private queue: Pending<A, R>[] = [];
  private inFlight = 0;
  private pumpScheduled = false;

  constructor(
    private readonly run: (inputs: A[]) => Promise<R[]>,
    private readonly options: { maxInFlight: number; maxBatch?: number; afterTurn?: boolean },
  ) {}

  call(input: A): Promise<R> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.options.afterTurn) this.pump();
      else if (!this.pumpScheduled) {
        this.pumpScheduled = true;
        setImmediate(() => {
          this.pumpScheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.options.maxInFlight) {
      const batch = this.queue.splice(0, this.options.maxBatch ?? 500);
      this.inFlight++;
      // a `run` that throws at once fails its batch as one that rejects does
      Promise.resolve()
        .then(() => this.run(batch.map((item) => item.input)))
        .then(
          (results) => {
            batch.forEach((item, i) => {
              item.resolve(results[i] as R);
            });
          },
          (error: unknown) => {
            for (const item of batch) item.reject(error);
          },
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}

/**
 * Group commit for events that each start a new stream (an issued token, a redeemed code), in one
 * statement and one commit per batch (`Batched`; `maxInFlight` defaults to the store's
 * `concurrentWrites`: 4 on a server, 1 on PGlite, where each write starts after the turn).
 */
export class GroupCommit {
  private readonly writes: Batched<{ streamId: string; event: DomainEvent; metadata: EventMetadata }, void>;

  constructor(store: PostgresEventStore, options: { maxBatch?: number; maxInFlight?: number } = {}) {
    this.writes = new Batched(async (items) => store.appendToNewStreams(items).then(() => []), {
      maxInFlight: options.maxInFlight ?? store.concurrentWrites,
      afterTurn: store.concurrentWrites <= 1,
      ...(options.maxBatch !== undefined && { maxBatch: options.maxBatch }),
    });
  }

  /** Resolves once the event is committed as version 1 of its own new stream. */
  append(streamId: string, event: DomainEvent): Promise<void> {
    // captured now, in the caller's context: the write may run in another caller's
    return this.writes.call({ streamId, event, metadata: activeTraceContext() });
  }
}

/**
 * Group commit for appends to streams that exist, each at the version its caller read (a refresh
 * token's rotation with its access token's event, under its guard): the appends arriving while
 * writes are in flight are written together by the next one, in one statement and one commit
 * (`PostgresEventStore.appendMany`), and each caller hears what its own `append` would have said:
 * recorded, a `ConcurrencyError`, or its guard's refusal. One statement holds one append per stream
 * and one guard `sql`; the others of a batch follow in statements of their own.
 */
export class GroupAppend {
  private readonly writes: Batched<ManyAppend, ManyOutcome>;

  constructor(store: PostgresEventStore, options: { maxBatch?: number; maxInFlight?: number } = {}) {
    this.writes = new Batched(
      async (items) => {
        const outcomes: ManyOutcome[] = new Array(items.length);
        for (const group of statementsOf(items))
          (await store.appendMany(group.map((i) => items[i]!))).forEach((outcome, k) => {
            outcomes[group[k]!] = outcome;
          });
        return outcomes;
      },
      {
        maxInFlight: options.maxInFlight ?? store.concurrentWrites,
        afterTurn: store.concurrentWrites <= 1,
        ...(options.maxBatch !== undefined && { maxBatch: options.maxBatch }),
      },
    );
  }

  /** As `EventStore.append` with a version expected, resolving once the events are committed. */
  async append(
    streamId: string,
    expected: number,
    events: readonly DomainEvent[],
    options: Pick<ManyAppend, 'newStreams' | 'guard'> = {},
  ): Promise<{ nextExpectedVersion: number; lastPosition: string }> {
    // the trace context captured now, in the caller's context: the write may run in another caller's
    const outcome = await this.writes.call({
      streamId,
      expected,
      events,
      ...options,
      metadata: activeTraceContext(),
    });
    if ('error' in outcome) throw outcome.error;
    return outcome;
  }
}

/** A batch's appends as statements (indices): each with one guard `sql` and one append per stream, in order. */
const statementsOf = (items: readonly ManyAppend[]): number[][] => {
  const statements: { guard: string | undefined; streams: Set<string>; items: number[] }[] = [];
  items.forEach((item, i) => {
    const guard = item.guard?.sql;
    // after the last statement holding its stream, so two appends to one stream keep their order
    const after = statements.findLastIndex((s) => s.streams.has(item.streamId));
    const fits = statements.findIndex((s, k) => k > after && s.guard === guard);
    const statement = fits >= 0 ? statements[fits]! : { guard, streams: new Set<string>(), items: [] };
    if (fits < 0) statements.push(statement);
    statement.streams.add(item.streamId);
    statement.items.push(i);
  });
  return statements.map((s) => s.items);
};
