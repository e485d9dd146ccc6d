// pnpm build: the production build in dist/, started with plain node (no tsx, no TypeScript):
//   NODE_ENV=production node dist/grantline.js [command]
// esbuild bundles each command's entry point with every workspace package it imports (they export
// TypeScript sources); third-party packages stay external, resolved at run time from node_modules
// (a production install: `pnpm install --prod`, as deploy/docker/Dockerfile does), so native code,
// PGlite's WebAssembly and OpenTelemetry's module hooks work as they do from source.
import { rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';
import { COMMANDS } from './entries.ts';

const root = resolve(import.meta.dirname, '../..');
const outdir = process.env.GRANTLINE_BUILD_DIR ?? join(root, 'dist');

/** Bundles the workspace (`@grantline/*`, relative paths), leaves every other package external. */
const thirdPartyExternal: Plugin = {
  name: 'third-party-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('@grantline/')) return undefined;
      if (args.path.startsWith('node:') || builtinModules.includes(args.path)) return { external: true };
      return { path: args.path, external: true };
    });
  },
};

const started = Date.now();
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: [
    { in: 'scripts/build/grantline.ts', out: 'grantline' },
    ...Object.entries(COMMANDS).map(([out, entry]) => ({ in: entry, out })),
  ],
  outdir,
  bundle: true,
  // shared code (the service kit, the events, ...) once, in chunks the commands import
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
  plugins: [thirdPartyExternal],
});
// the files are ES modules whatever package.json they are copied beside
writeFileSync(join(outdir, 'package.json'), `${JSON.stringify({ type: 'module' }, null, 2)}\n`);

const external = new Set(
  Object.values(result.metafile.outputs).flatMap((o) =>
    o.imports.filter((i) => i.external && !i.path.startsWith('node:')).map((i) => i.path),
  ),
);
writeFileSync(join(outdir, 'externals.json'), `${JSON.stringify([...external].sort(), null, 2)}\n`);
const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
console.log(
  `built ${Object.keys(COMMANDS).length} commands into ${outdir} in ${Date.now() - started} ms (${(bytes / 1024 / 1024).toFixed(1)} MiB with source maps); run: NODE_ENV=production node ${join(outdir, 'grantline.js')} [command]`,
);
