import type pg from 'pg';
import { NotifiedCache } from './change-feed.ts';
import type { People, UserRecord } from './people.ts';

/** The people projection's user change notifications: the payload is the changed user's id. */
export const usersChannel = (schema: string) => `${schema}_users`;

/**
 * User lookups on the hot path (introspection's per-request status check), as ClientDirectory does
 * for clients: a short-lived per-instance cache in front of the projection, which the projection's
 * notification evicts at once for a created, disabled or re-credentialed user, so a disabled user's
 * token reads inactive as soon as the projection has it. Without a listening connection nothing is
 * cached. An unknown id is cached too (a client's own subject): its creation notifies as well.
 */
export class UserDirectory {
  private readonly cache: NotifiedCache<UserRecord | undefined>;

  constructor(
    private readonly people: People,
    private readonly pool: pg.Pool,
    private readonly schema: string,
    ttlMs = 1_000,
  ) {
    this.cache = new NotifiedCache(ttlMs);
  }

  /** Listens for the projection's user changes (evicting each changed user); returns a stop function. */
  watch(logger: { warn(o: object, msg: string): void }): () => Promise<void> {
    return this.cache.watch(this.pool, usersChannel(this.schema), logger, 'user directory');
  }

  async user(userId: string): Promise<UserRecord | undefined> {
    const hit = this.cache.get(userId);
    if (hit) return hit.value;
    return this.cache.load(userId, () => this.people.user(userId));
  }
}
