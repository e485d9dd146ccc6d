import { type Meter, metrics } from '@opentelemetry/api';

/**
 * A meter of `scope`, for code that counts without depending on the OpenTelemetry API itself. Get it
 * once telemetry has started (when a service is built, not at import): before the SDK registers its
 * provider, the API hands out a meter that records nothing, for good.
 */
export const meter = (scope: string) => metrics.getMeter(scope);

/**
 * Instruments made on first use rather than at import: modules are imported before `startTelemetry`
 * registers the meter provider, and an instrument made before that records nothing, ever. The first
 * use comes from a request, a relay batch or a consumed message, all after the service started.
 */
export const lazyInstruments = <T>(scope: string, make: (meter: Meter) => T): (() => T) => {
  let made: T | undefined;
  return () => {
    made ??= make(metrics.getMeter(scope));
    return made;
  };
};
