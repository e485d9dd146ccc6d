import { ATTRS, METRICS as NAMES } from '@grantline/telemetry/names';
import { type Meter, metrics } from '@opentelemetry/api';

/**
 * The SDK's metric names (from Grantline's one list of telemetry names, STYLE.md). A no-op unless
 * the application registers a meter provider.
 */
export const METRICS = {
  /** seconds from a revocation's event time (`revokedAt`) to the fact applied to the local deny-list */
  propagation: NAMES.sdkRevocationPropagation,
  /** seconds since the last heartbeat of the revocations feed (the freshness watermark) */
  staleness: NAMES.sdkStaleness,
  /** token decisions, by `grantline.decision`: allowed, revoked, invalid, insufficient_scope, unavailable, introspected */
  decisions: NAMES.sdkDecisions,
} as const;

export const DECISION = ATTRS.decision;

const make = (meter: Meter) => ({
  propagation: meter.createHistogram(METRICS.propagation, { unit: 's' }),
  decisions: meter.createCounter(METRICS.decisions),
  staleness: meter.createObservableGauge(METRICS.staleness, { unit: 's' }),
});

let made: ReturnType<typeof make> | undefined;

/**
 * Made on first use, not at import: an application usually imports the SDK before it registers its
 * meter provider, and instruments made before that record nothing, ever.
 */
export const instruments = (): ReturnType<typeof make> => {
  made ??= make(metrics.getMeter('@grantline/resource-server'));
  return made;
};
