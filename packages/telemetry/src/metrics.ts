import { metrics } from '@opentelemetry/api';

/**
 * A meter of `scope`, for code that counts without depending on the OpenTelemetry API itself. Get it
 * once telemetry has started (when a service is built, not at import): before the SDK registers its
 * provider, the API hands out a meter that records nothing, for good.
 */
export const meter = (scope: string) => metrics.getMeter(scope);
