export * from './fixtures.ts';
export * from './infra.ts';
export {
  freePort,
  freePorts,
  portOpen,
  repoRoot,
  type ScriptProcess,
  spawnScript,
  waitForPort,
} from './processes.ts';
export * from './tcp-proxy.ts';
