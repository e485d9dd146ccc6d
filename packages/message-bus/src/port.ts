import type { EventPublisher } from '@grantline/event-store';

/** An event as a consumer receives it: CloudEvents attributes, validated data, and where it came from. */
export interface ConsumedEvent {
  readonly id: string;
  /** domain type, e.g. `GrantCreated` */
  readonly type: string;
  /** CloudEvents `type`, e.g. `dev.grantline.GrantCreated.v1` */
  readonly ceType: string;
  readonly source: string;
  /** CloudEvents `subject`: the stream (aggregate) id, also the Kafka key */
  readonly subject: string;
  /** the event's version within its stream (CloudEvents extension `streamversion`) */
  readonly streamVersion: number;
  readonly time: string;
  readonly data: unknown;
  readonly traceparent?: string;
  readonly tracestate?: string;
  readonly causationId?: string;
  readonly correlationId?: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export type EventHandler = (event: ConsumedEvent) => Promise<void>;

export interface SubscriptionOptions {
  /** consumer group, also the name under which processed events are recorded */
  groupId: string;
  topics: readonly string[];
  handle: EventHandler;
  /**
   * Optional: consecutive events of one topic partition (of the `types` wanted, in order) handled in
   * one call, all or nothing, as a projection applies them in one transaction. A failure is retried
   * like `handle`'s; one that is not retriable hands the same events to `handle` one by one, which
   * finds the event at fault (dead-lettered) and applies the others.
   */
  handleMany?: (events: readonly ConsumedEvent[]) => Promise<void>;
  /**
   * the event types `handle` wants (all when omitted): the others are passed over by their CloudEvents
   * type header, never decoded nor handed to `handle`, and their offsets move on as if handled
   */
  types?: readonly string[];
  fromBeginning?: boolean;
  /**
   * Called when the consumer gives up (a retriable failure outlived every retry). The service's
   * default ends the process with a non-zero code so the orchestrator restarts it, instead of hanging.
   */
  onCrash: (error: Error) => void;
  /** attempts for a failing handler before a non-retriable failure is dead-lettered (default 3) */
  handlerAttempts?: number;
  /**
   * Kafka: the broker holds each fetch for `pacedMs` (unless a megabyte gathers first), for a
   * high-volume subscription that can take that much more latency. Unpaced, a fetch answers as soon
   * as anything is new, so a topic written hundreds of times a second costs each consumer a request
   * (and a broker response) per few messages; paced, one per `pacedMs` and broker, busy or idle.
   * Default: `HIGH_VOLUME_PACE_MS` for a subscription to the tokens topic alone, else none; at most
   * `MAX_PACE_MS`. The in-process bus reads its log at most once a pace, however often it is woken.
   */
  pacedMs?: number;
}

export interface Subscription {
  stop(): Promise<void>;
}

/** The message bus port. One contract test suite runs against every adapter. */
export interface MessageBus extends EventPublisher {
  subscribe(options: SubscriptionOptions): Promise<Subscription>;
  close(): Promise<void>;
}
