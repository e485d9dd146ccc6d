import type { DomainEvent, EventMetadata } from '@grantline/events';
import { activeTraceContext, type PostgresEventStore } from './postgres/store.ts';

interface Pending {
  streamId: string;
  event: DomainEvent;
  metadata: EventMetadata;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for events that each start a new stream (an issued token, a redeemed code): callers
 * arriving while writes are in flight are written together by the next one, in one statement and one
 * commit. No timer, so no added latency when idle; under load one fsync serves many requests, and up
 * to `maxInFlight` writes overlap so Postgres can group their commits too (default: the store's
 * `concurrentWrites`; on PGlite, which runs one statement at a time, one write gathers everything
 * that arrived while the one before ran).
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private inFlight = 0;
  private pumpScheduled = false;

  constructor(
    private readonly store: PostgresEventStore,
    private readonly options: { maxBatch?: number; maxInFlight?: number } = {},
  ) {}

  /** Resolves once the event is committed as version 1 of its own new stream. */
  append(streamId: string, event: DomainEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      // captured now, in the caller's context: the write may run in another caller's
      this.queue.push({ streamId, event, metadata: activeTraceContext(), resolve, reject });
      if (this.store.concurrentWrites > 1) this.pump();
      else if (!this.pumpScheduled) {
        // PGlite runs a statement on this thread: nothing else arrives while it runs, so a write
        // started at once holds one event. It starts after this turn of the event loop instead, with
        // every event the turn's other requests appended.
        this.pumpScheduled = true;
        setImmediate(() => {
          this.pumpScheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (
      this.queue.length > 0 &&
      this.inFlight < (this.options.maxInFlight ?? this.store.concurrentWrites)
    ) {
      const batch = this.queue.splice(0, this.options.maxBatch ?? 500);
      this.inFlight++;
      this.store
        .appendToNewStreams(batch.map(({ streamId, event, metadata }) => ({ streamId, event, metadata })))
        .then(
          () => {
            for (const item of batch) item.resolve();
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
