import { metrics } from '@opentelemetry/api';

/** The SDK's telemetry names, in one place (STYLE.md). A no-op unless the application registers a meter provider. */
export const METRICS = {
  /** seconds from a revocation's event time (`revokedAt`) to the fact applied to the local deny-list */
  propagation: 'grantline.resource_server.revocation.propagation',
  /** seconds since the last heartbeat of the revocations feed (the freshness watermark) */
  staleness: 'grantline.resource_server.revocation.staleness',
  /** token decisions, by `grantline.decision`: allowed, revoked, invalid, insufficient_scope, unavailable, introspected */
  decisions: 'grantline.resource_server.decisions',
} as const;

export const DECISION = 'grantline.decision';

const meter = metrics.getMeter('@grantline/resource-server');

export const instruments = {
  propagation: meter.createHistogram(METRICS.propagation, { unit: 's' }),
  decisions: meter.createCounter(METRICS.decisions),
  staleness: meter.createObservableGauge(METRICS.staleness, { unit: 's' }),
};
