/**
 * What the production build makes: one JavaScript file per command of `node dist/grantline.js
 * <command>`, each built from the entry point `pnpm start`, `pnpm start:services` and `pnpm
 * example:resource-server` run from TypeScript. One list, read by the build and by the dispatcher.
 */
export const COMMANDS = {
  /** every service in one process on PGlite (`pnpm start`): the image's default */
  embedded: 'packages/server/src/main.ts',
  registry: 'services/registry/src/main.ts',
  authorization: 'services/authorization/src/main.ts',
  token: 'services/token/src/main.ts',
  consent: 'services/consent/src/main.ts',
  introspection: 'services/introspection/src/main.ts',
  /** the invoices API of examples/resource-server */
  'resource-server-example': 'examples/resource-server/main.ts',
  /** writes a new set of per-service keys as env files into a directory (compose's `keys` service) */
  keys: 'scripts/write-keys.ts',
  /** every service's event-store schema and the topics (the Helm chart's pre-install Job) */
  migrate: 'scripts/migrate.ts',
} as const;

export type Command = keyof typeof COMMANDS;
export const DEFAULT_COMMAND: Command = 'embedded';
