/** Telemetry names, in one place (STYLE.md). Metric names follow OpenTelemetry semantic-convention style. */
export const METRICS = {
  eventsAppended: 'grantline.events.appended',
  appendDuration: 'grantline.events.append.duration',
  relayPublished: 'grantline.relay.published',
  relayBatchDuration: 'grantline.relay.batch.duration',
  consumerProcessed: 'grantline.consumer.processed',
  consumerDeadLettered: 'grantline.consumer.dead_lettered',
  consumerLag: 'grantline.consumer.lag',
  projectionLagSeconds: 'grantline.projection.lag',
  /** attempts a rate limiter refused (attributes: `grantline.limiter`, `grantline.limit`) */
  limiterRefused: 'grantline.limiter.refused',
} as const;

export const SPANS = {
  append: 'event_store.append',
  relayPublish: 'relay publish',
  consume: (topic: string) => `${topic} process`,
} as const;

export const ATTRS = {
  stream: 'grantline.stream_id',
  eventType: 'grantline.event_type',
  consumer: 'grantline.consumer',
  relay: 'grantline.relay',
  topic: 'messaging.destination.name',
  partition: 'messaging.destination.partition.id',
  /** which limiter refused: `login` */
  limiter: 'grantline.limiter',
  /** which of its limits: `username`, `address`, `global` */
  limit: 'grantline.limit',
} as const;
