import type { DomainEvent, EventMetadata, RecordedEvent } from '@grantline/events';

/**
 * What the caller expects the stream's current version to be:
 * a number (the version of its last event), `no_stream` (it must not exist yet),
 * `stream_exists`, or `any` (no check).
 */
export type ExpectedVersion = number | 'no_stream' | 'stream_exists' | 'any';

export interface AppendOptions {
  /** Merged into every event's metadata; trace context is taken from the active span when absent. */
  metadata?: EventMetadata;
  /**
   * Each of these events as version 1 of a new stream, in the same statement: written only if the
   * append is, and a stream that exists already fails the whole append (a ConcurrencyError). They are
   * not in the result's `events`.
   */
  newStreams?: readonly { streamId: string; event: DomainEvent }[];
  /**
   * A condition on the service's own read models that the appending statement checks once, with its
   * own snapshot (no round trip of its own): when it does not hold, nothing is written and the append
   * throws `guard.refusal()` (a version conflict is said first). What commits later than the snapshot
   * is not seen: a writer of what the guard reads waits out in-flight appends itself if it must.
   */
  guard?: AppendGuard;
}

/** An SQL condition an append is made under (Postgres adapters; PGlite runs the same SQL). */
export interface AppendGuard {
  /**
   * a fixed, stable boolean SQL expression over the service's schema; its parameters are `$1`,
   * `$2`... over `values`, and it has no other `$`
   */
  sql: string;
  values: readonly unknown[];
  refusal: () => Error;
}

export interface AppendResult {
  /** the stream's version after the append */
  nextExpectedVersion: number;
  /** global position of the last event appended, as a decimal string */
  lastPosition: string;
  events: RecordedEvent[];
}

export interface ReadStreamResult<E extends DomainEvent = DomainEvent> {
  /** 0 when the stream has no events */
  currentVersion: number;
  events: RecordedEvent<E>[];
}

/** The event store port. One contract test suite runs against every adapter. */
export interface EventStore {
  append<E extends DomainEvent>(
    streamId: string,
    expected: ExpectedVersion,
    events: readonly E[],
    options?: AppendOptions,
  ): Promise<AppendResult>;
  readStream<E extends DomainEvent = DomainEvent>(
    streamId: string,
    /**
     * from `fromVersion` (default 1), at most `maxCount` events; `currentVersion` is always the stream's.
     * `withFirst`: the stream's first event too, ahead of the others, in the same read (an aggregate
     * whose identity is in its first event, read from a later version on: one round trip, not two).
     */
    options?: { fromVersion?: number; maxCount?: number; withFirst?: boolean },
  ): Promise<ReadStreamResult<E>>;
  /**
   * Runs `work` in one transaction: every append through the store it is given commits, or none does.
   * An append in it that loses a race for a stream's next version throws a ConcurrencyError that ends
   * the transaction (nothing of it commits): retry the whole transaction, not the append.
   */
  transaction<T>(work: (store: EventStore) => Promise<T>): Promise<T>;
}
