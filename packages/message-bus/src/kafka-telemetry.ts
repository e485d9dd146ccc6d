import { lazyInstruments, METRICS } from '@grantline/telemetry';
import { trace } from '@opentelemetry/api';
import type { IHeaders } from 'kafkajs';

// The Kafka bus's spans and metrics: the tracer, consumer lag per group and partition (observed
// from the last batch each consumer saw), and the counters of handled and parked messages.

export const tracer = trace.getTracer('@grantline/message-bus');
/** links per relay batch span (the SDK's default span limit) */
export const MAX_LINKS = 128;
export const lag = new Map<string, { value: number; attributes: Record<string, string | number> }>();
export const instruments = lazyInstruments('@grantline/message-bus', (meter) => {
  const lagGauge = meter.createObservableGauge(METRICS.consumerLag, {
    description: 'messages behind the partition high watermark, per consumer group and partition',
  });
  lagGauge.addCallback((result) => {
    for (const { value, attributes } of lag.values()) result.observe(value, attributes);
  });
  return {
    processed: meter.createCounter(METRICS.consumerProcessed, { description: 'messages handled' }),
    deadLettered: meter.createCounter(METRICS.consumerDeadLettered, { description: 'messages parked' }),
  };
});

/** Current consumer lag, per `groupId/topic/partition` (also exported as the metric above). */
export const consumerLag = (): ReadonlyMap<string, number> =>
  new Map([...lag].map(([key, { value }]) => [key, value]));

/** W3C trace context and other headers of a Kafka message, as strings (the first value of each). */
export const headersAsStrings = (headers: IHeaders | undefined): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[key] = first.toString();
  }
  return out;
};
