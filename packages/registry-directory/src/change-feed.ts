import type pg from 'pg';

/**
 * A LISTENing connection for a projection's change notifications, reconnecting after a second when
 * lost. `listening(true)` once LISTEN took effect, `listening(false)` when the connection is lost:
 * a cache in front of the projection caches nothing meanwhile (it would miss the changes).
 */
export const listenForChanges = (
  pool: pg.Pool,
  channel: string,
  handlers: { changed: (payload: string | undefined) => void; listening: (on: boolean) => void },
  logger: { warn(o: object, msg: string): void },
  what: string,
): (() => Promise<void>) => {
  let stopped = false;
  let client: pg.PoolClient | undefined;
  const listen = async () => {
    try {
      client = await pool.connect();
      client.on('notification', (n) => handlers.changed(n.payload));
      client.on('error', (error) => {
        handlers.listening(false);
        logger.warn({ err: error }, `${what} lost its change feed; not caching until it is back`);
        client?.release(true);
        client = undefined;
        if (!stopped) setTimeout(listen, 1_000).unref();
      });
      await client.query(`LISTEN ${channel}`);
      handlers.listening(true);
    } catch (error) {
      client?.release(true);
      client = undefined;
      if (!stopped) setTimeout(listen, 1_000).unref();
      logger.warn({ err: error }, `${what} could not listen for changes; retrying`);
    }
  };
  void listen();
  return async () => {
    stopped = true;
    handlers.listening(false);
    client?.release(true);
    client = undefined;
  };
};

/**
 * A short-lived per-instance cache in front of a projection, evicted by its change notifications:
 * a changed key is dropped at once, and nothing is cached while not listening (it would miss the
 * changes). A read that raced a notification is not cached. At most 10,000 entries.
 */
export class NotifiedCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();
  private listening = false;
  /** bumped by every change notification: a lookup that raced one does not cache what it read */
  private changes = 0;

  constructor(private readonly ttlMs: number) {}

  /** Listens on `channel` (payload: the changed key); returns a stop function. */
  watch(pool: pg.Pool, channel: string, logger: { warn(o: object, msg: string): void }, what: string) {
    return listenForChanges(
      pool,
      channel,
      {
        changed: (key) => {
          this.changes++;
          if (key) this.entries.delete(key);
        },
        listening: (on) => {
          this.listening = on;
          this.entries.clear(); // whatever changed while not listening
        },
      },
      logger,
      what,
    );
  }

  /** the cached entry, if one is live (`has` tells a cached undefined from a miss) */
  get(key: string): { value: V } | undefined {
    const hit = this.entries.get(key);
    return hit && hit.until > Date.now() ? hit : undefined;
  }

  /** Reads with `read`, caching what it read unless a change raced it or nobody listens. */
  async load(key: string, read: () => Promise<V>, cacheIf: (value: V) => boolean = () => true): Promise<V> {
    const changesBefore = this.changes;
    const value = await read();
    if (!this.listening || this.changes !== changesBefore || !cacheIf(value)) return value;
    if (this.entries.size > 10_000) this.entries.clear();
    this.entries.set(key, { value, until: Date.now() + this.ttlMs });
    return value;
  }
}
