import type { z } from 'zod';
import { ConfigError, loadConfig } from './config.ts';
import { type RunningService, stopOnSignals } from './service.ts';

/**
 * A service's process entry point: parse the environment once, start, stop on SIGTERM/SIGINT. A bad
 * configuration prints every problem by variable name and exits 1, without a stack trace.
 */
export const runServiceMain = async <S extends z.ZodType>(
  name: string,
  schema: S,
  start: (config: z.infer<S>) => Promise<Pick<RunningService, 'stop'>>,
): Promise<void> => {
  try {
    stopOnSignals(await start(loadConfig(schema)));
  } catch (error) {
    console.error(error instanceof ConfigError ? `${name}: ${error.message}` : error);
    process.exit(1);
  }
};
