import type { IncomingMessage, ServerResponse } from 'node:http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { type IMetricReader, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';

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
}

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
    // Without an endpoint nothing is exported, but a tracer provider is still registered (with a
    // processor that drops spans): spans then have real trace ids, so W3C trace context is recorded
    // with events and carried to consumers. (NodeSDK registers no provider without a processor, and
    // otherwise falls back to an OTLP exporter on localhost that logs every failed export.)
    ...(options.otlpEndpoint
      ? { traceExporter: new OTLPTraceExporter({ url: `${options.otlpEndpoint}/v1/traces` }) }
      : { spanProcessors: [dropSpans] }),
    instrumentations: [],
  });
  sdk.start();
  const telemetry: Telemetry = {
    metricsHandler: (req, res) => prometheus.getMetricsRequestHandler(req, res),
    shutdown: async () => {
      if (started !== telemetry) return;
      started = undefined;
      await sdk.shutdown();
    },
  };
  started = telemetry;
  return telemetry;
};
