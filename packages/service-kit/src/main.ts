import type { z } from 'zod';
import { ConfigError, loadConfig } from './config.ts';
import { type RunningService, stopOnSignals } from './service.ts';

const isStartupFailure = (error: unknown): error is Error =>
  error instanceof ConfigError || (error as { startup?: unknown } | undefined)?.startup === true;

/** What a start-up failure says: its own message when it has one for operators, else a short one. */
export const describeStartupFailure = (name: string, error: unknown): string => {
  if (isStartupFailure(error)) return `${name}: ${error.message}`;
  const { code, message } = error as { code?: string; message?: string };
  return `${name}: could not start: ${message ?? String(error)}${code ? ` (${code})` : ''}`;
};

/**
 * A service's process entry point: parse the environment once, start, stop on SIGTERM/SIGINT. A bad
 * configuration prints every problem by variable name and exits 1; any other failure to start prints
 * one line naming it (and what to do, where that is known) and exits 1, never a stack trace.
 */
export const runServiceMain = async <S extends z.ZodType>(
  name: string,
  schema: S,
  start: (config: z.infer<S>) => Promise<Pick<RunningService, 'stop'>>,
): Promise<void> => {
  try {
    stopOnSignals(await start(loadConfig(schema)));
  } catch (error) {
    console.error(describeStartupFailure(name, error));
    process.exit(1);
  }
};
