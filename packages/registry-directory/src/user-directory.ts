import type pg from 'pg';
import { listenForChanges } from './change-feed.ts';
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
  private readonly cache = new Map<string, { record: UserRecord | undefined; until: number }>();
  private listening = false;
  /** bumped by every change notification: a lookup that raced one does not cache what it read */
  private changes = 0;

  constructor(
    private readonly people: People,
    private readonly pool: pg.Pool,
    private readonly schema: string,
    private readonly ttlMs = 1_000,
  ) {}

  /** Listens for the projection's user changes (evicting each changed user); returns a stop function. */
  watch(logger: { warn(o: object, msg: string): void }): () => Promise<void> {
    return listenForChanges(
      this.pool,
      usersChannel(this.schema),
      {
        changed: (userId) => {
          this.changes++;
          if (userId) this.cache.delete(userId);
        },
        listening: (on) => {
          this.listening = on;
          this.cache.clear(); // whatever changed while not listening
        },
      },
      logger,
      'user directory',
    );
  }

  async user(userId: string): Promise<UserRecord | undefined> {
    const hit = this.cache.get(userId);
    if (hit && hit.until > Date.now()) return hit.record;
    const changesBefore = this.changes;
    const record = await this.people.user(userId);
    if (!this.listening || this.changes !== changesBefore) return record;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(userId, { record, until: Date.now() + this.ttlMs });
    return record;
  }
}
