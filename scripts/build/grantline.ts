// dist/grantline.js: the one entry point of the production build (and of the image).
//   node dist/grantline.js [embedded|registry|authorization|token|consent|introspection|resource-server-example|keys]
// Each command's module is loaded only when asked for: `registry` never loads PGlite, `embedded`
// never connects to Kafka.
import { COMMANDS, type Command, DEFAULT_COMMAND } from './entries.ts';

const command = process.argv[2] ?? DEFAULT_COMMAND;
if (!Object.hasOwn(COMMANDS, command)) {
  const known = Object.keys(COMMANDS).join(', ');
  console.error(`grantline: unknown command "${command}"; one of: ${known} (default ${DEFAULT_COMMAND})`);
  process.exit(2);
}
// GRANTLINE_ENV_FILE: variables from a file (a service's keys, written by the `keys` command), for
// platforms that mount secrets as files; a variable already set in the environment wins.
const envFile = process.env.GRANTLINE_ENV_FILE;
if (envFile) {
  try {
    const before = new Set(Object.keys(process.env));
    process.loadEnvFile(envFile);
    // which variables came from the file (names only): with GRANTLINE_WORKERS the workers are forked
    // without them and read the file themselves, so the secrets never sit in a child's environment
    process.env.GRANTLINE_ENV_FILE_KEYS = Object.keys(process.env)
      .filter((name) => !before.has(name))
      .join(',');
  } catch (error) {
    console.error(
      `grantline: cannot read GRANTLINE_ENV_FILE ${envFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
    process.exit(1);
  }
}
// built beside this file by scripts/build/build.ts, one file per command
await import(new URL(`./${command as Command}.js`, import.meta.url).href);
