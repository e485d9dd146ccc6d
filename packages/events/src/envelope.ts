/**
 * Event shapes. A domain event is a plain `{ type, data }` record; the store adds identity, position and
 * metadata when it is recorded; on Kafka it travels as a CloudEvents 1.0 event (binary content mode).
 */
export interface DomainEvent<Type extends string = string, Data = unknown> {
  readonly type: Type;
  readonly data: Data;
}

/** W3C trace context and causation, carried from the command that caused an event to its consumers. */
export interface EventMetadata {
  readonly traceparent?: string;
  readonly tracestate?: string;
  /** id of the event or request that caused this event */
  readonly causationId?: string;
  /** id shared by every event of one user-visible operation */
  readonly correlationId?: string;
}

export interface RecordedEvent<E extends DomainEvent = DomainEvent> {
  readonly id: string;
  readonly type: E['type'];
  readonly data: E['data'];
  readonly streamId: string;
  readonly streamVersion: number;
  /** global position in the store, as a decimal string (bigint in Postgres) */
  readonly position: string;
  readonly time: Date;
  /** CloudEvents `source`: the service that recorded it, e.g. `/grantline/consent` */
  readonly source: string;
  readonly metadata: EventMetadata;
}

/** CloudEvents 1.0 attributes (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md). */
export interface CloudEvent<Data = unknown> {
  readonly specversion: '1.0';
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly subject: string;
  readonly time: string;
  readonly datacontenttype: 'application/json';
  readonly data: Data;
  readonly traceparent?: string;
  readonly tracestate?: string;
}
