import {
  type ConsumedEvent,
  idempotentProjection,
  type MessageBus,
  type Projection,
  type Reactor,
  type Subscription,
  selfIdempotentProjection,
} from '@grantline/message-bus';
import type pg from 'pg';

/**
 * A read model fed from topics (consumer group = `name`): each event of the projection's types that
 * it finds relevant applied once, in the transaction that records it as processed (a partition's
 * consecutive events share one), or, for a projection idempotent by itself (`applyRun`), a run in one
 * statement with no record. `applied` is called once an event has committed.
 */
export const projectFromTopics = async (
  bus: MessageBus,
  pool: pg.Pool,
  schema: string,
  options: {
    name: string;
    topics: readonly string[];
    projection: Projection;
    onCrash: (error: Error) => void;
    applied?: (event: ConsumedEvent) => void;
  },
): Promise<Subscription> => {
  const { name, projection, applied } = options;
  const { applyRun } = projection;
  const recorded = applyRun
    ? selfIdempotentProjection({ pool, consumer: name, applyRun })
    : idempotentProjection({ pool, schema, consumer: name, project: projection.apply });
  const types = new Set<string>(projection.types);
  const wanted = (e: ConsumedEvent) => types.has(e.type) && (projection.relevant?.(e) ?? true);
  return bus.subscribe({
    groupId: name,
    topics: options.topics,
    types: projection.types,
    onCrash: options.onCrash,
    handle: async (event) => {
      if (!wanted(event)) return;
      await recorded(event);
      applied?.(event);
    },
    // a run of a partition's events in one transaction: one commit, not one per event
    handleMany: async (events) => {
      const chosen = events.filter(wanted);
      if (chosen.length === 0) return;
      await recorded.many(chosen);
      if (applied) for (const event of chosen) applied(event);
    },
  });
};

/** A reactor fed from topics (consumer group = `name`): each event of its types, at least once. */
export const reactToTopics = (
  bus: MessageBus,
  options: { name: string; topics: readonly string[]; reactor: Reactor; onCrash: (error: Error) => void },
): Promise<Subscription> => {
  const { reactor } = options;
  const types = new Set<string>(reactor.types);
  return bus.subscribe({
    groupId: options.name,
    topics: options.topics,
    types: reactor.types,
    onCrash: options.onCrash,
    handle: (event) => (types.has(event.type) ? reactor.react(event) : Promise.resolve()),
  });
};
