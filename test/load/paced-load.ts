import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '@grantline/testing';

/**
 * Background load for `bench:revocation`: client_credentials token requests at a fixed rate, open
 * loop (each request is sent when it is due, whether or not earlier ones have been answered), from
 * its own process so that it neither slows nor is slowed by the measuring loop. Counts over a
 * window opened and closed by the parent: 2xx, other statuses, errors, and requests not sent because
 * `maxInFlight` were outstanding (a server that stalls must not make the generator melt down).
 */
export interface LoadCounts {
  at: number;
  ok: number;
  other: number;
  errors: number;
  skipped: number;
}

const self = fileURLToPath(import.meta.url);

if (process.env.PACED_LOAD_URL) runGenerator();

function runGenerator() {
  const url = process.env.PACED_LOAD_URL!;
  const rate = Number(process.env.PACED_LOAD_RATE);
  const authorization = process.env.PACED_LOAD_AUTHORIZATION!;
  const maxInFlight = 1_000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: maxInFlight });
  const body = 'grant_type=client_credentials';
  const counts = { ok: 0, other: 0, errors: 0, skipped: 0 };
  let inFlight = 0;
  const fire = () => {
    if (inFlight >= maxInFlight) {
      counts.skipped++;
      return;
    }
    inFlight++;
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          authorization,
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': body.length,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          inFlight--;
          if (res.statusCode && res.statusCode >= 200 && res.statusCode < 300) counts.ok++;
          else counts.other++;
        });
      },
    );
    req.on('error', () => {
      inFlight--;
      counts.errors++;
    });
    req.end(body);
  };
  const start = performance.now();
  let sent = 0;
  // every millisecond, whatever is due by now: the mean rate is exact whatever the timer's jitter
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - start) * rate) / 1_000);
    for (; sent < due; sent++) fire();
  }, 1);
  process.on('message', (message) => {
    if (message === 'count') process.send!({ at: performance.now(), ...counts });
    if (message === 'stop') {
      clearInterval(timer);
      agent.destroy();
      process.disconnect();
    }
  });
  process.send!('ready');
}

/** Starts the generator; `count()` reads its counters (for a window: the difference of two). */
export const startPacedLoad = async (
  children: ChildProcess[],
  options: { url: string; rate: number; authorization: string },
) => {
  const child = spawn(process.execPath, ['--import', 'tsx/esm', self], {
    cwd: repoRoot,
    env: {
      ...process.env,
      PACED_LOAD_URL: options.url,
      PACED_LOAD_RATE: String(options.rate),
      PACED_LOAD_AUTHORIZATION: options.authorization,
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the load generator exited with ${code}`)));
  });
  return {
    count: () =>
      new Promise<LoadCounts>((resolve) => {
        child.once('message', (m) => resolve(m as LoadCounts));
        child.send('count');
      }),
    stop: () => {
      if (child.connected) child.send('stop');
    },
  };
};
