import { setTimeout as sleep } from 'node:timers/promises';
import { isRetriable } from './errors.ts';

export interface RetryOptions {
  /** attempts in all, including the first (default 5) */
  attempts?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** which errors are worth another attempt (default: those marked `retriable`) */
  retryOn?: (error: unknown) => boolean;
}

/** The one retry helper: exponential backoff with full jitter. */
export const withRetry = async <T>(
  operation: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
) => {
  const { attempts = 5, initialDelayMs = 5, maxDelayMs = 1_000, retryOn = isRetriable } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (attempt >= attempts || !retryOn(error)) throw error;
      const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
      await sleep(Math.random() * ceiling);
    }
  }
};
