import type { ExpectedVersion } from './port.ts';

/**
 * Optimistic concurrency: the stream was not at the expected version. Retriable by re-reading, except
 * when the conflict ended the caller's transaction (`retriable` false): then only the whole
 * transaction can be tried again, not the append within it.
 */
export class ConcurrencyError extends Error {
  override readonly name = 'ConcurrencyError';
  readonly retriable: boolean;
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedVersion,
    /** undefined when it could not be read (the caller's transaction was aborted by the conflict) */
    readonly actual: number | undefined,
    options: { transactionEnded?: boolean } = {},
  ) {
    super(`stream ${streamId} is at version ${actual ?? 'unknown'}, expected ${expected}`);
    this.retriable = options.transactionEnded !== true;
  }
}

export const isRetriable = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;

/**
 * Postgres cannot be reached or ended the session: refused or reset connections, SQLSTATE class 08
 * (connection exception), 57P01-57P03 (shut down by an administrator, crash, still starting up) and
 * 53300 (too many connections). Worth another attempt once it is back; nothing about the request.
 */
export const isConnectionError = (error: unknown): boolean => {
  if (typeof error !== 'object' || error === null) return false;
  const code = String((error as { code?: unknown }).code ?? '');
  const message = String((error as { message?: unknown }).message ?? '');
  return (
    code.startsWith('08') ||
    /^57P0[123]$/.test(code) ||
    code === '53300' ||
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code) ||
    /Connection terminated|not queryable|Client has encountered a connection error/.test(message)
  );
};
