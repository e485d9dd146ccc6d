import type { DomainEvent, EventMetadata } from '@grantline/events';
import type { AppendResult, EventStore, ReadStreamResult } from './port.ts';
import { withRetry } from './retry.ts';

/** A pure aggregate: `decide` and `evolve` do no I/O; time and ids come in with the command. */
export interface Decider<Command, State, E extends DomainEvent> {
  initialState: () => State;
  evolve: (state: State, event: E) => State;
  decide: (command: Command, state: State) => readonly E[];
}

export interface HandleResult<State, E extends DomainEvent> {
  newState: State;
  newEvents: readonly E[];
  /** undefined when `decide` returned no events (nothing appended) */
  append?: AppendResult;
}

/**
 * Read -> fold -> decide -> append with the expected version -> retry the whole cycle on a
 * concurrency conflict, so `decide` always sees the stream as it is when the append lands.
 */
export const handleCommand = async <Command, State, E extends DomainEvent>(
  store: EventStore,
  streamId: string,
  command: Command,
  decider: Decider<Command, State, E>,
  options: {
    metadata?: EventMetadata;
    attempts?: number;
    /**
     * the stream as the caller has just read it (to check who may issue the command): the first
     * attempt decides on it instead of reading again; a conflict re-reads as usual
     */
    read?: ReadStreamResult<E>;
  } = {},
): Promise<HandleResult<State, E>> => {
  let read = options.read;
  return withRetry(
    async () => {
      const { currentVersion, events } = read ?? (await store.readStream<E>(streamId));
      read = undefined;
      const state = events.reduce(
        (s, e) => decider.evolve(s, { type: e.type, data: e.data } as E),
        decider.initialState(),
      );
      const newEvents = decider.decide(command, state);
      if (newEvents.length === 0) return { newState: state, newEvents };
      const append = await store.append(
        streamId,
        currentVersion === 0 ? 'no_stream' : currentVersion,
        newEvents,
        options.metadata ? { metadata: options.metadata } : {},
      );
      return { newState: newEvents.reduce(decider.evolve, state), newEvents, append };
    },
    { attempts: options.attempts ?? 10 },
  );
};
