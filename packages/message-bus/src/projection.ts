import type { Queryable } from '@grantline/event-store';
import type { DomainEvent, EventType, GrantlineEvent } from '@grantline/events';
import type pg from 'pg';
import type { ConsumedEvent } from './port.ts';

/**
 * A consumed event as one member of the union `E`: checking `type` narrows `data` to that event's
 * schema (distributes over the union, so a `switch` on `type` discriminates).
 */
export type Consumed<E extends DomainEvent> = E extends DomainEvent
  ? Omit<ConsumedEvent, 'type' | 'data'> & { readonly type: E['type']; readonly data: E['data'] }
  : never;

/** The Grantline events of the given types, e.g. `EventOf<'GrantCreated' | 'GrantRevoked'>`. */
export type EventOf<T extends EventType> = Extract<GrantlineEvent, { type: T }>;

/**
 * What the runtime feeds from topics (a read model's projection, or a reactor): the event types it
 * handles, and how it applies one inside the transaction that records the event as processed.
 * Events of other types never reach `apply` (nor open a transaction).
 */
export interface Projection {
  readonly types: readonly EventType[];
  readonly apply: (event: ConsumedEvent, tx: pg.PoolClient) => Promise<void>;
  /** an event of its types it has nothing to do with is passed over without a transaction */
  readonly relevant?: (event: ConsumedEvent) => boolean;
  /**
   * Only for a projection idempotent by itself (an event applied again, or a run replayed in any
   * order, leaves the same rows): applies a run of events in one statement, in autocommit. The
   * runtime then records no processed-events row and opens no transaction (`selfIdempotentProjection`).
   */
  readonly applyRun?: (events: readonly ConsumedEvent[], db: Queryable) => Promise<void>;
}

/** The projection, for the events `relevant` accepts only; the others cost no transaction. */
export const onlyWhen = (
  projection: Projection,
  relevant: (event: ConsumedEvent) => boolean,
): Projection => ({
  ...projection,
  relevant,
});

/**
 * The consumed event typed by its `type`, or undefined when it is not one of `types`. Sound because
 * every consumed event's data was validated against the schema of its type when it was decoded.
 */
export const typedEvent = <const T extends EventType>(
  event: ConsumedEvent,
  types: readonly T[],
): Consumed<EventOf<T>> | undefined =>
  (types as readonly string[]).includes(event.type) ? (event as Consumed<EventOf<T>>) : undefined;

/**
 * A projection of the given event types; `apply` receives them as a discriminated union, so a
 * `switch (event.type)` ending in a `never` check covers exactly the types listed.
 */
export const onEvents = <const T extends EventType>(
  types: readonly T[],
  apply: (event: Consumed<EventOf<T>>, tx: pg.PoolClient) => Promise<unknown>,
): Projection => ({
  types,
  apply: async (event, tx) => {
    const typed = typedEvent(event, types);
    if (typed) await apply(typed, tx);
  },
});

/** Several projections as one: applied in order, in one transaction per event. */
export const combine = (...projections: readonly Projection[]): Projection => ({
  types: [...new Set(projections.flatMap((p) => p.types))],
  apply: async (event, tx) => {
    for (const p of projections) await p.apply(event, tx);
  },
});

/**
 * What the runtime feeds a reactor: the event types it reacts to, and the reaction, run outside any
 * transaction (it issues commands through the event store, whose own transactions must not nest in
 * a projection's: on the embedded database's one session they would wait for each other forever).
 * At least once: a reaction must be idempotent (a command the aggregate has already applied decides
 * no new events).
 */
export interface Reactor {
  readonly types: readonly EventType[];
  readonly react: (event: ConsumedEvent) => Promise<void>;
}

/** A reactor to the given event types; `react` receives them as a discriminated union. */
export const reactTo = <const T extends EventType>(
  types: readonly T[],
  react: (event: Consumed<EventOf<T>>) => Promise<unknown>,
): Reactor => ({
  types,
  react: async (event) => {
    const typed = typedEvent(event, types);
    if (typed) await react(typed);
  },
});
