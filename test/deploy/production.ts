import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@grantline/testing';
import { readDockerfile } from './dockerfile.ts';

/** pnpm's own entry point: the one running this test, else the one npx keeps in its cache. */
export const pnpmEntry = (): string | undefined => {
  const running = process.env.npm_execpath;
  if (running && /pnpm\.c?js$/.test(running)) return running;
  const cache = join(homedir(), '.npm', '_npx');
  for (const dir of existsSync(cache) ? readdirSync(cache) : []) {
    const candidate = join(cache, dir, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
};

/**
 * What the image's build stage does (`pnpm build`, `pnpm package`), into `app` instead of /app, and
 * the image's COPY of its healthcheck script.
 */
export const buildProductionApp = (pnpm: string, app: string) => {
  const run = (...args: string[]) =>
    execFileSync(process.execPath, [pnpm, '--silent', ...args], { cwd: repoRoot, stdio: 'pipe' });
  run('build');
  run('package', app);
  copyFileSync(join(repoRoot, 'deploy', 'docker', 'healthcheck.mjs'), join(app, 'healthcheck.mjs'));
};

export interface Started {
  child: ChildProcess;
  output: () => string;
  /** resolves with the exit code */
  exited: Promise<number | null>;
}

/**
 * Starts `app` the way the image starts: its ENTRYPOINT and (unless given) CMD, from the Dockerfile,
 * with /app mapped to `app`, in an environment of the image's ENV only (no NODE_OPTIONS, no tsx
 * loader), plus `env` (ports and directories of this machine).
 */
export const startAsImage = (app: string, env: Record<string, string>, command?: string[]): Started => {
  const image = readDockerfile();
  const local = (arg: string) => arg.replace(/^\/app\//, `${app}/`);
  const [program, ...args] = [...image.entrypoint!, ...(command ?? image.cmd!)].map(local);
  if (program !== 'node') throw new Error(`the image's entrypoint runs ${program}, not node`);
  const child = spawn(process.execPath, args, {
    cwd: app,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: app, ...image.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => {
    output += d;
  });
  child.stderr!.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
};

/** Runs the image's HEALTHCHECK command (node /app/healthcheck.mjs) against `port`: its exit code. */
export const healthcheck = (app: string, port: number): Promise<number | null> => {
  const [, ...args] = readDockerfile().healthcheckCommand!.map((a) => a.replace(/^\/app\//, `${app}/`));
  const child = spawn(process.execPath, args, { env: { PORT: String(port) }, stdio: 'ignore' });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
};

/** Polls the HEALTHCHECK until it passes, or the process exits, or the time is up. */
export const healthy = async (app: string, port: number, started: Started, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void started.exited.then(() => {
    gone = true;
  });
  while (Date.now() < deadline && !gone) {
    if ((await healthcheck(app, port)) === 0) return true;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  return false;
};
