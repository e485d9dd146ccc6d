import type { ExpectedVersion } from './port.ts';

/** Optimistic concurrency: the stream was not at the expected version. Retriable by re-reading. */
export class ConcurrencyError extends Error {
  override readonly name = 'ConcurrencyError';
  readonly retriable = true;
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedVersion,
    /** undefined when it could not be read (the caller's transaction was aborted by the conflict) */
    readonly actual: number | undefined,
  ) {
    super(`stream ${streamId} is at version ${actual ?? 'unknown'}, expected ${expected}`);
  }
}

export const isRetriable = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
