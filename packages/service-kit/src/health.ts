/** A dependency the service needs to serve: resolves when it answers, throws when it does not. */
export type ReadinessCheck = () => Promise<unknown>;

const withTimeout = <T>(promise: Promise<T>, ms: number): Promise<T> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, 'ok' | string>;
}

/** Runs every check at once, each bounded in time, so `/readyz` answers quickly even when one hangs. */
export const runChecks = async (
  checks: Record<string, ReadinessCheck>,
  timeoutMs = 1_500,
): Promise<ReadinessReport> => {
  const names = Object.keys(checks);
  const results = await Promise.allSettled(names.map((n) => withTimeout(checks[n]!(), timeoutMs)));
  const report: ReadinessReport = { ready: true, checks: {} };
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') report.checks[names[i]!] = 'ok';
    else {
      report.ready = false;
      report.checks[names[i]!] = `unavailable: ${(r.reason as Error)?.message ?? String(r.reason)}`;
    }
  });
  return report;
};
