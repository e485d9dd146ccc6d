/**
 * Telemetry names, in one place (STYLE.md): every span, metric, attribute and log field Grantline
 * emits is named here and nowhere else. Metric and attribute names follow the OpenTelemetry semantic
 * conventions where one exists (`http.server.request.duration`, `http.route`, `messaging.*`), and
 * `grantline.*` otherwise. This module imports nothing, so the resource-server SDK uses it without
 * pulling in the OpenTelemetry SDK (`@grantline/telemetry/names`).
 */

/** Instrument kind and unit of each metric: how the Prometheus exporter names its series. */
export type MetricKind = 'counter' | 'histogram' | 'gauge';

const metric = <K extends MetricKind>(name: string, kind: K, unit?: 's') => ({ name, kind, unit }) as const;

/** Every metric, with the kind and unit it is created with (the dashboard test derives Prometheus names from these). */
export const METRIC_DEFINITIONS = {
  /** HTTP server requests by `http.request.method`, `http.route` (the template, never the raw path) and `http.response.status_code` */
  httpServerDuration: metric('http.server.request.duration', 'histogram', 's'),
  eventsAppended: metric('grantline.events.appended', 'counter'),
  appendDuration: metric('grantline.events.append.duration', 'histogram', 's'),
  relayPublished: metric('grantline.relay.published', 'counter'),
  relayBatchDuration: metric('grantline.relay.batch.duration', 'histogram', 's'),
  /** seconds from an event being recorded to the relay having it acknowledged by Kafka */
  relayLag: metric('grantline.relay.lag', 'histogram', 's'),
  consumerProcessed: metric('grantline.consumer.processed', 'counter'),
  consumerDeadLettered: metric('grantline.consumer.dead_lettered', 'counter'),
  /** messages behind the partition high watermark, per consumer group and partition */
  consumerLag: metric('grantline.consumer.lag', 'gauge'),
  projectionLagSeconds: metric('grantline.projection.lag', 'histogram', 's'),
  /** attempts a rate limiter refused (attributes: `grantline.limiter`, `grantline.limit`) */
  limiterRefused: metric('grantline.limiter.refused', 'counter'),
  /** access tokens issued, by `grantline.grant_type` */
  tokensIssued: metric('grantline.tokens.issued', 'counter'),
  /** seconds from a revoking event's time to its facts applied to the deny-list by the projector */
  revocationPropagation: metric('grantline.revocation.propagation', 'histogram', 's'),
  /** resource-server SDK: seconds from a revocation's time to the fact in the local deny-list */
  sdkRevocationPropagation: metric('grantline.resource_server.revocation.propagation', 'histogram', 's'),
  /** resource-server SDK: seconds since the last heartbeat of the revocations feed (freshness watermark) */
  sdkStaleness: metric('grantline.resource_server.revocation.staleness', 'gauge', 's'),
  /** resource-server SDK: token decisions by `grantline.decision` */
  sdkDecisions: metric('grantline.resource_server.decisions', 'counter'),
} as const;

/** Metric names by key. */
export const METRICS = Object.fromEntries(
  Object.entries(METRIC_DEFINITIONS).map(([key, { name }]) => [key, name]),
) as { readonly [K in keyof typeof METRIC_DEFINITIONS]: (typeof METRIC_DEFINITIONS)[K]['name'] };

/**
 * The Prometheus series a metric is exported as, by the exporter's naming (checked against its output
 * in test/names.unit.test.ts): dots become underscores, no unit suffix, a counter adds `_total`, a
 * histogram has `_bucket`, `_sum` and `_count`.
 */
export const prometheusSeries = (definition: { name: string; kind: MetricKind }): string[] => {
  const base = definition.name.replace(/[^a-zA-Z0-9_]/g, '_');
  if (definition.kind === 'counter') return [`${base}_total`];
  if (definition.kind === 'histogram') return [`${base}_bucket`, `${base}_sum`, `${base}_count`];
  return [base];
};

/** Histogram bucket boundaries (s) for request and propagation latencies: sub-millisecond to seconds. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

export const SPANS = {
  append: 'event_store.append',
  /** OpenTelemetry messaging conventions: `{operation} {destination}`; one span per batch, linked to each event's trace */
  relayPublish: 'relay publish',
  consume: (topic: string) => `${topic} process`,
  /** HTTP server span: `{method} {route}` once the route is known, `{method}` before (semantic conventions) */
  httpServer: (method: string, route?: string) => (route ? `${method} ${route}` : method),
  /** a browser step of the authorization flow, continuing the flow's trace (docs/adr/0003) */
  flowStep: (step: string) => `authorization_flow ${step}`,
  /** the token endpoint's redemption of an authorization code, continuing the flow's trace */
  codeRedemption: 'oauth2.token authorization_code',
  /** the resource-server SDK's access-token check (JWT, deny-list, scope, organisation) */
  resourceServerCheck: 'resource_server.check',
  /** a Postgres query, named as OpenTelemetry's instrumentation-pg names it: `pg.query:{OPERATION} {database}` */
  pgQuery: (operation: string, database?: string) => `pg.query:${operation}${database ? ` ${database}` : ''}`,
  /** a Redis command, named as OpenTelemetry's instrumentation-ioredis names it: the command */
  redisCommand: (command: string) => command,
} as const;

export const ATTRS = {
  stream: 'grantline.stream_id',
  eventType: 'grantline.event_type',
  consumer: 'grantline.consumer',
  relay: 'grantline.relay',
  topic: 'messaging.destination.name',
  partition: 'messaging.destination.partition.id',
  messagingSystem: 'messaging.system',
  messagingOperation: 'messaging.operation.type',
  batchSize: 'messaging.batch.message_count',
  /** which limiter refused: `login` */
  limiter: 'grantline.limiter',
  /** which of its limits: `username`, `address`, `global` */
  limit: 'grantline.limit',
  httpMethod: 'http.request.method',
  httpRoute: 'http.route',
  httpStatus: 'http.response.status_code',
  urlPath: 'url.path',
  errorType: 'error.type',
  grantType: 'grantline.grant_type',
  /** resource-server SDK: allowed, revoked, invalid, insufficient_scope, unavailable, introspected */
  decision: 'grantline.decision',
  dbSystem: 'db.system.name',
  dbOperation: 'db.operation.name',
  /** the statement's text, with its `$n` placeholders (parameter values are never recorded) */
  dbQueryText: 'db.query.text',
  dbNamespace: 'db.namespace',
} as const;

/** Fields every log line may carry (OpenTelemetry's log data model names them so). */
export const LOG_FIELDS = {
  traceId: 'trace_id',
  spanId: 'span_id',
  traceFlags: 'trace_flags',
} as const;
