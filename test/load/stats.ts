import * as hdr from 'hdr-histogram-js';

/** Latency recorder in microsecond resolution; prints p50/p99/max in milliseconds. */
export const latencyRecorder = () => {
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  return {
    recordMs: (ms: number) => histogram.recordValue(Math.max(1, Math.round(ms * 1_000))),
    count: () => histogram.totalCount,
    summary: () => ({
      p50: histogram.getValueAtPercentile(50) / 1_000,
      p99: histogram.getValueAtPercentile(99) / 1_000,
      max: histogram.maxValue / 1_000,
    }),
  };
};

export const fmt = (n: number, digits = 1) => n.toFixed(digits);
