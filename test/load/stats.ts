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

/**
 * Runs two sides in turns, `rounds` runs each: A B, then B A, then A B, ..., so a drift of the
 * machine's speed falls on both sides alike. Each side's median run by `rate` (of an even number of
 * runs, the lower middle one), with every run in order.
 */
export const alternated = async <R>(
  rounds: number,
  sides: readonly [() => Promise<R>, () => Promise<R>],
  rate: (run: R) => number,
): Promise<{ medians: [R, R]; runs: [R[], R[]] }> => {
  const runs: [R[], R[]] = [[], []];
  for (let round = 0; round < Math.max(1, rounds); round++)
    for (const side of round % 2 === 0 ? ([0, 1] as const) : ([1, 0] as const))
      runs[side].push(await sides[side]());
  const median = (of: R[]) => [...of].sort((a, b) => rate(a) - rate(b))[(of.length - 1) >> 1]!;
  return { medians: [median(runs[0]), median(runs[1])], runs };
};
