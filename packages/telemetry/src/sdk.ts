import type { IncomingMessage, ServerResponse } from 'node:http';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationType,
  type IMetricReader,
  InstrumentType,
  PeriodicExportingMetricReader,
  type ViewOptions,
} from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  AlwaysOffSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { traceRedisCommands } from './clients.ts';
import { LATENCY_BUCKETS } from './names.ts';

export interface Telemetry {
  /** Serves the Prometheus text exposition of every metric (mount at `/metrics`). */
  metricsHandler(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  /** OTLP/HTTP endpoint (e.g. http://collector:4318); traces and metrics are pushed there when set */
  otlpEndpoint?: string | undefined;
  /**
   * span processors besides the OTLP export (tests pass a `SimpleSpanProcessor` over an
   * `InMemorySpanExporter` to see every span of services started in one process)
   */
  spanProcessors?: SpanProcessor[];
}

// Latency histograms get buckets that resolve milliseconds (the default ones start at 5 s for
// seconds-valued histograms' purposes: 0, 5, 10, ... ms would put every token request in one bucket).
const latencyViews: ViewOptions[] = [
  {
    instrumentType: InstrumentType.HISTOGRAM,
    instrumentUnit: 's',
    aggregation: {
      type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM,
      options: { boundaries: [...LATENCY_BUCKETS] },
    },
  },
];

/**
 * Starts OpenTelemetry once per process: W3C trace context propagation (the SDK default), Prometheus
 * metrics served by the service's own HTTP server, and OTLP export of traces and metrics when an
 * endpoint is configured. Without an endpoint nothing is exported and nothing is retried in the background.
 */
let started: Telemetry | undefined;

const dropSpans = {
  onStart: () => {},
  onEnd: () => {},
  forceFlush: async () => {},
  shutdown: async () => {},
};

export const startTelemetry = (options: TelemetryOptions): Telemetry => {
  // One SDK per process (OpenTelemetry's globals can be registered once); services started together
  // in one process, as in the end-to-end tests, share it.
  if (started) return started;
  const exports = Boolean(options.otlpEndpoint) || (options.spanProcessors?.length ?? 0) > 0;
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const metricReaders: IMetricReader[] = [prometheus];
  if (options.otlpEndpoint) {
    metricReaders.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${options.otlpEndpoint}/v1/metrics` }),
      }),
    );
  }
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: options.serviceName,
      [ATTR_SERVICE_VERSION]: options.serviceVersion ?? '0.1.0',
    }),
    metricReaders,
    views: latencyViews,
    // Without an endpoint nothing is exported, but a tracer provider is still registered (with a
    // processor that drops spans): spans then have real trace ids, so W3C trace context is recorded
    // with events and carried to consumers. (NodeSDK registers no provider without a processor, and
    // otherwise falls back to an OTLP exporter on localhost that logs every failed export.) And then
    // a trace this service begins records nothing: its spans are non-recording ones, ids and context
    // only (carried on unsampled), so nothing builds, attributes or ends one, and the query and
    // command spans (`tracePool`, Redis) are not started at all. A trace a caller sent sampled is
    // still recorded and carried on sampled, so services that do export it downstream keep their
    // part. Where spans are exported (an OTLP endpoint, a test's processor), the SDK's sampler
    // stands: OTEL_TRACES_SAMPLER, else parent-based.
    ...(!exports && { sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }) }),
    spanProcessors: [
      options.otlpEndpoint
        ? new BatchSpanProcessor({
            exporter: new OTLPTraceExporter({ url: `${options.otlpEndpoint}/v1/traces` }),
          })
        : dropSpans,
      ...(options.spanProcessors ?? []),
    ],
    // W3C trace context only: not W3C baggage (the SDK's default adds it), which any public caller
    // could fill with up to 8 KB that every outgoing request would then carry on
    textMapPropagator: new W3CTraceContextPropagator(),
    // Outgoing HTTP (fetch, which is undici): a client span per request and its W3C `traceparent`
    // on the request, from undici's diagnostics channels (no module patching, so it works in ES
    // modules). Only inside a trace: background fetches (JWKS, the revocation stream) start none.
    instrumentations: [new UndiciInstrumentation({ requireParentforSpans: true })],
  });
  sdk.start();
  // Redis commands, from ioredis's own diagnostics channel; Postgres queries are traced per pool
  // (`traceQueries`, by the runtime that makes the pool).
  const untraceRedis = traceRedisCommands();
  const telemetry: Telemetry = {
    metricsHandler: (req, res) => prometheus.getMetricsRequestHandler(req, res),
    shutdown: async () => {
      if (started !== telemetry) return;
      started = undefined;
      untraceRedis();
      await sdk.shutdown();
    },
  };
  started = telemetry;
  return telemetry;
};
