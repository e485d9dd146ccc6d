// pnpm package: the production build with what it needs to run, and nothing else, in build/app/:
//   dist/          the JavaScript of `pnpm build`
//   node_modules/  the third-party packages of the workspace's production dependencies (a pnpm
//                  production install from the lockfile: no devDependencies, no test packages)
// Started with `cd build/app && NODE_ENV=production node dist/grantline.js [command]`. The image
// (deploy/docker/Dockerfile) copies exactly this directory, and the deploy test starts it the way
// the image does, so what CI starts is what the image holds.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const out = resolve(process.argv[2] ?? join(root, 'build', 'app'));
const dist = join(root, 'dist');
if (!existsSync(join(dist, 'grantline.js'))) {
  console.error('package: no dist/grantline.js; run `pnpm build` first');
  process.exit(1);
}

/** Workspace projects that only tests use: left out, so their dependencies are not installed. */
const TEST_ONLY = new Set(['test', 'packages/testing']);

const started = Date.now();
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const workspace = readFileSync(join(root, 'pnpm-workspace.yaml'), 'utf8');
writeFileSync(
  join(out, 'pnpm-workspace.yaml'),
  workspace
    .split('\n')
    .filter((l) => !TEST_ONLY.has(l.replace(/^\s*-\s*/, '').trim()))
    .join('\n'),
);
for (const file of ['package.json', 'pnpm-lock.yaml']) cpSync(join(root, file), join(out, file));
// the dependency patches package.json names (pnpm.patchedDependencies): the install applies them
cpSync(join(root, 'patches'), join(out, 'patches'), { recursive: true });
// every workspace project's manifest (the lockfile's importers), for the production install
const projects = ['packages', 'services', 'examples'].flatMap((group) =>
  readdirSync(join(root, group)).map((name) => `${group}/${name}`),
);
for (const project of projects) {
  const manifest = join(root, project, 'package.json');
  if (TEST_ONLY.has(project) || !existsSync(manifest)) continue;
  mkdirSync(join(out, project), { recursive: true });
  cpSync(manifest, join(out, project, 'package.json'));
}

// the pnpm running this script (npm_execpath), else pnpm on PATH
const pnpm = process.env.npm_execpath;
const [command, args] = pnpm ? [process.execPath, [pnpm]] : ['pnpm', []];
execFileSync(
  command,
  [
    ...args,
    'install',
    '--prod',
    '--frozen-lockfile',
    '--prefer-offline',
    '--ignore-scripts',
    // every package at node_modules/<name>, where dist/*.js (outside any workspace project) finds it
    '--config.shamefully-hoist=true',
    '--reporter=append-only',
  ],
  { cwd: out, stdio: ['ignore', 'ignore', 'inherit'] },
);
// the manifests served the install only; dist/ bundles the workspace's own code
for (const group of ['packages', 'services', 'examples']) rmSync(join(out, group), { recursive: true });
rmSync(join(out, 'node_modules', '@grantline'), { recursive: true, force: true });
cpSync(dist, join(out, 'dist'), { recursive: true });

const missing = (JSON.parse(readFileSync(join(dist, 'externals.json'), 'utf8')) as string[]).filter(
  (name) => !existsSync(join(out, 'node_modules', name, 'package.json')),
);
if (missing.length > 0) {
  console.error(`package: dist/ imports packages the production install lacks: ${missing.join(', ')}`);
  process.exit(1);
}
console.log(
  `packaged ${dirname(out) === join(root, 'build') ? 'build/app' : out} in ${Date.now() - started} ms`,
);
