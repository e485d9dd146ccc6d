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
