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

/**
 * A benchmark setting from the environment: comma-separated positive numbers (whole ones with
 * `integer`), else `fallback`. Anything else stops the benchmark with a message naming the variable.
 */
export const settingList = (
  name: string,
  fallback: string,
  options: { integer?: boolean } = {},
): number[] => {
  const raw = process.env[name]?.trim() || fallback;
  const values = raw.split(',').map((v) => Number(v.trim()));
  const bad = (v: number) => !Number.isFinite(v) || v <= 0 || (options.integer && !Number.isInteger(v));
  if (values.some(bad))
    throw new Error(
      `${name} must be ${options.integer ? 'whole numbers' : 'numbers'} above 0, comma-separated (got "${raw}")`,
    );
  return values;
};

/** One benchmark setting (`settingList` of one value). */
export const setting = (name: string, fallback: number, options: { integer?: boolean } = {}): number => {
  const values = settingList(name, String(fallback), options);
  if (values.length !== 1) throw new Error(`${name} must be one number (got "${process.env[name]}")`);
  return values[0]!;
};
