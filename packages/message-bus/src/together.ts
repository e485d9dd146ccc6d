import { isRetriable, withRetry } from '@grantline/event-store';
import type { ConsumedEvent, SubscriptionOptions } from './port.ts';

/** At most this many events in one `handleMany` call (one projection transaction). */
export const MANY_AT_MOST = 200;

/**
 * Hands `events` to the subscriber's `handleMany` in one call, retried as `handle` is. True once
 * handled; false when it failed for a reason a retry cannot cure (a bad event among them): the caller
 * then hands them to `handle` one by one, which dead-letters the bad one and applies the others
 * (nothing of the failed call was applied). A retriable failure that persists propagates.
 */
export const handledTogether = async (
  options: SubscriptionOptions,
  events: readonly ConsumedEvent[],
): Promise<boolean> => {
  const many = options.handleMany;
  if (!many) return false;
  try {
    await withRetry(() => many(events), { attempts: options.handlerAttempts ?? 3, retryOn: () => true });
    return true;
  } catch (error) {
    if (isRetriable(error)) throw error;
    return false;
  }
};
