import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@grantline/testing';

/**
 * Benchmarks start the systems under test as child processes (as a user would run them): each
 * spawned script resolves once it prints `ready`, and every child is remembered for `stopAll`.
 * Every child runs with `NODE_ENV=production`. With `BENCH_CPU_PROFILE=<dir>` each child writes a V8
 * CPU profile there when it exits (`--cpu-prof`, which NODE_OPTIONS may not carry).
 */
const profileDir = process.env.BENCH_CPU_PROFILE;
export const childProcesses = () => {
  const children: ChildProcess[] = [];
  return {
    children,
    spawnTs: (script: string, env: Record<string, string>, ready: string) =>
      new Promise<ChildProcess>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [
            ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
            '--import',
            'tsx/esm',
            join(repoRoot, script),
          ],
          {
            cwd: repoRoot,
            // both systems as they run in production (node-oidc-provider and express read NODE_ENV)
            env: { ...process.env, NODE_ENV: 'production', ...env },
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        children.push(child);
        let out = '';
        child.stdout!.on('data', (d) => {
          out += d;
          if (out.includes(ready)) resolve(child);
        });
        child.once('exit', (code) => reject(new Error(`${script} exited with ${code}: ${out.slice(-500)}`)));
      }),
  };
};
