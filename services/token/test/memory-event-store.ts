import { randomUUID } from 'node:crypto';
import type { Clock } from '@grantline/clock';
import {
  type AppendGuard,
  type AppendOptions,
  ConcurrencyError,
  type EventStore,
  type ExpectedVersion,
} from '@grantline/event-store';
import type { DomainEvent, RecordedEvent } from '@grantline/events';

/**
 * The event store port in memory, for unit tests of command handlers: versions and expected-version
 * checks as the Postgres adapter has them, events recorded at the clock's time. A transaction's
 * appends become visible together when it ends, or not at all.
 */
export const memoryEventStore = (clock: Clock) => {
  const streams = new Map<string, RecordedEvent[]>();
  let position = 0;

  const store = (pending?: Map<string, RecordedEvent[]>): EventStore => {
    const eventsOf = (id: string) => [...(streams.get(id) ?? []), ...(pending?.get(id) ?? [])];
    return {
      async append<E extends DomainEvent>(
        streamId: string,
        expected: ExpectedVersion,
        events: readonly E[],
        options: AppendOptions = {},
      ) {
        const version = eventsOf(streamId).length;
        const ok =
          expected === 'any' ||
          (expected === 'no_stream' && version === 0) ||
          (expected === 'stream_exists' && version > 0) ||
          expected === version;
        if (!ok) throw new ConcurrencyError(streamId, expected, version);
        // a guard's SQL is the Postgres adapters'; a test gives the same condition as `holds` (a guard
        // without it passes here)
        const guard = options.guard as (AppendGuard & { holds?: () => boolean }) | undefined;
        if (guard && !(guard.holds?.() ?? true)) throw guard.refusal();
        const newStreams = options.newStreams ?? [];
        if (newStreams.some((n) => eventsOf(n.streamId).length > 0))
          throw new ConcurrencyError(streamId, expected, version);
        const record = (e: DomainEvent, id: string, streamVersion: number): RecordedEvent => ({
          id: randomUUID(),
          type: e.type,
          data: e.data,
          streamId: id,
          streamVersion,
          position: String(++position),
          time: new Date(clock.now()),
          source: '/grantline/test',
          metadata: {},
        });
        const recorded = events.map((e, i) => record(e, streamId, version + i + 1));
        const target = pending ?? streams;
        for (const n of newStreams) target.set(n.streamId, [record(n.event, n.streamId, 1)]);
        target.set(streamId, [...(target.get(streamId) ?? []), ...recorded]);
        return {
          nextExpectedVersion: version + events.length,
          lastPosition: recorded.at(-1)!.position,
          events: recorded,
        };
      },
      async readStream<E extends DomainEvent>(
        streamId: string,
        options: { fromVersion?: number; maxCount?: number; withFirst?: boolean } = {},
      ) {
        const all = eventsOf(streamId);
        const from = options.fromVersion ?? 1;
        const events = all.slice(
          from - 1,
          options.maxCount === undefined ? undefined : from - 1 + options.maxCount,
        );
        const first = options.withFirst && from > 1 ? all.slice(0, 1) : [];
        return { currentVersion: all.length, events: [...first, ...events] as RecordedEvent<E>[] };
      },
      async transaction<T>(work: (tx: EventStore) => Promise<T>): Promise<T> {
        const appended = new Map<string, RecordedEvent[]>();
        const result = await work(store(appended));
        for (const [id, events] of appended) streams.set(id, [...(streams.get(id) ?? []), ...events]);
        return result;
      },
    };
  };
  return Object.assign(store(), { streams });
};
