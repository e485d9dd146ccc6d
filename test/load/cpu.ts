import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time by component, from /proc: every process on the machine, named by what it is (a Grantline
 * service, Kafka, Postgres, Redis, the peer, this load generator). Two snapshots around a measured run
 * give the CPU each component spent on it, so a benchmark can say where the time per request goes.
 * Linux only; elsewhere the snapshots are empty and nothing is printed.
 */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

const COMPONENTS: [RegExp, string][] = [
  [/services\/token\//, 'token'],
  [/services\/consent\//, 'consent'],
  [/services\/introspection\//, 'introspection'],
  [/services\/authorization\//, 'authorization'],
  [/services\/registry\//, 'registry'],
  [/example\/resource-server|examples?\/.*resource/, 'resource server'],
  [/start-services/, 'gateway'],
  [/packages\/server\/src\/main/, 'embedded'],
  [/kafka/i, 'kafka'],
  [/^postgres/, 'postgres'],
  [/redis-server/, 'redis'],
  // bench:flow's peer is the benchmark's own script, started again (`spawnTs`) with the peer's port
  [/oidc-provider-peer|flow-peer|--import tsx\/esm \S*test\/load\/flow\.bench\.ts/, 'node-oidc-provider'],
];

const nameOf = (pid: number, cmdline: string): string => {
  if (pid === process.pid) return 'load generator';
  for (const [pattern, name] of COMPONENTS) if (pattern.test(cmdline)) return name;
  return 'other';
};

export type CpuSnapshot = Map<number, { name: string; seconds: number }>;

export const cpuSnapshot = (): CpuSnapshot => {
  const snapshot: CpuSnapshot = new Map();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return snapshot;
  }
  for (const entry of pids) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // fields after the command (which may hold spaces) in parentheses: utime is the 14th, stime the 15th
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const pid = Number(entry);
      snapshot.set(pid, { name: nameOf(pid, cmdline), seconds: ticks / TICKS });
    } catch {
      // gone meanwhile
    }
  }
  return snapshot;
};

/** CPU seconds per component between two snapshots (processes that started meanwhile count from 0). */
export const cpuSpent = (before: CpuSnapshot, after: CpuSnapshot): Map<string, number> => {
  const spent = new Map<string, number>();
  for (const [pid, { name, seconds }] of after) {
    const delta = seconds - (before.get(pid)?.seconds ?? 0);
    if (delta > 0) spent.set(name, (spent.get(name) ?? 0) + delta);
  }
  return spent;
};

/** `component ms, ...` per request, largest first, components under 0.02 ms left out, with the total. */
export const perRequest = (spent: Map<string, number>, requests: number): string => {
  if (requests === 0 || spent.size === 0) return 'n/a';
  const total = [...spent.values()].reduce((a, b) => a + b, 0);
  const parts = [...spent]
    .map(([name, seconds]) => [name, (seconds * 1000) / requests] as const)
    .filter(([, ms]) => ms >= 0.02)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ms]) => `${name} ${ms.toFixed(2)}`);
  return `${((total * 1000) / requests).toFixed(2)} ms of machine CPU (${parts.join(', ')})`;
};

/**
 * Waits until the machine is quiet: less than `cores` of CPU (default 0.2) over a quarter of a second,
 * this load generator left out. Resolves false when the machine is still busy after `timeoutMs`
 * (default 15 s); true at once where /proc cannot be read (nothing to wait on).
 */
export const quiet = async (options: { cores?: number; timeoutMs?: number } = {}): Promise<boolean> => {
  const windowMs = 250;
  const deadline = performance.now() + (options.timeoutMs ?? 15_000);
  let before = cpuSnapshot();
  if (before.size === 0) return true;
  while (performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const after = cpuSnapshot();
    let busy = 0;
    for (const [name, seconds] of cpuSpent(before, after)) if (name !== 'load generator') busy += seconds;
    if (busy / (windowMs / 1_000) < (options.cores ?? 0.2)) return true;
    before = after;
  }
  return false;
};

const settle = async (): Promise<void> => {
  if (!(await quiet())) console.log('  (the machine was still busy after 15 s; measuring anyway)');
};

/**
 * One measured run of a benchmark: it starts once the machine is quiet (`quiet`), so nothing of the run
 * before (a consumer draining, a relay publishing) runs during it. Its CPU by component is counted from
 * its start until the machine is quiet again after it, so the work it leaves behind counts to it;
 * `tailMs` says how long that took after the run.
 */
export const measuredRun = async <R extends object>(
  run: () => Promise<R>,
): Promise<R & { cpu: Map<string, number>; tailMs: number }> => {
  await settle();
  const before = cpuSnapshot();
  const result = await run();
  const ended = performance.now();
  await settle();
  return { ...result, cpu: cpuSpent(before, cpuSnapshot()), tailMs: performance.now() - ended };
};
