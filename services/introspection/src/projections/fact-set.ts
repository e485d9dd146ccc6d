import type pg from 'pg';
import type { FactLog } from './facts.ts';

/** The channel the facts projection notifies each recorded fact on (delivered when its transaction commits). */
export const factsChannel = (schema: string) => `${schema}_facts`;

/** Postgres refuses a payload of 8000 bytes or more: the keys of one event are sent in pieces below it. */
const MAX_PAYLOAD = 7_000;

/** One event's facts as notification payloads: `{"t": revokedAt ms, "k": [keys]}`, each under the limit. */
export const factNotifications = (keys: readonly string[], revokedAt: Date): string[] => {
  const t = revokedAt.getTime();
  const payloads: string[] = [];
  let piece: string[] = [];
  let size = 0;
  for (const key of keys) {
    const cost = JSON.stringify(key).length + 1;
    if (piece.length > 0 && size + cost > MAX_PAYLOAD) {
      payloads.push(JSON.stringify({ t, k: piece }));
      piece = [];
      size = 0;
    }
    piece.push(key);
    size += cost;
  }
  if (piece.length > 0) payloads.push(JSON.stringify({ t, k: piece }));
  return payloads;
};

/**
 * The revocation facts held in memory, so that introspection answers its revocation check without
 * a round trip to Postgres (ADR 0031). Facts are only ever added (revocation is terminal), and a fact
 * recorded again keeps its earliest revocation time, so the set is a monotonic copy of the table:
 * merging the bootstrap and the notifications in any order, or twice, ends in the table's rows.
 *
 * `watch` LISTENs first and then reads the whole table, so a fact committed meanwhile is in one or the
 * other; only then is the set live. While it is not (not yet bootstrapped, or the listening connection
 * lost until it is back and has read the table again) every check asks the table, as before. The local
 * projector adds its facts directly too (`add`), so this instance never waits for its own notification.
 */
export class FactSet {
  private readonly revokedAt = new Map<string, number>();
  private live = false;
  private changes = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    private readonly log: Pick<FactLog, 'revoked'>,
  ) {}

  /** Whether checks are answered from memory (else from the table). */
  get isLive(): boolean {
    return this.live;
  }

  /**
   * A number that changes whenever a fact is added or moved earlier, while the set is live; undefined
   * while it is not. The set only ever grows, so an answer derived from it stands while this is the
   * same: the inspector keeps each token's answer for as long (`tokenInspector`).
   */
  get version(): number | undefined {
    return this.live ? this.changes : undefined;
  }

  /** Which of `keys` are revoked, and since when: FactLog.revoked's answer. */
  async revoked(keys: readonly string[]): Promise<Map<string, Date>> {
    if (!this.live) return this.log.revoked(keys);
    const found = new Map<string, Date>();
    for (const key of keys) {
      const at = this.revokedAt.get(key);
      if (at !== undefined) found.set(key, new Date(at));
    }
    return found;
  }

  /** Records facts (the earliest revocation time of a key wins, as in the table). */
  add(keys: readonly string[], revokedAtMs: number): void {
    for (const key of keys) {
      const known = this.revokedAt.get(key);
      if (known === undefined || revokedAtMs < known) {
        this.revokedAt.set(key, revokedAtMs);
        this.changes++;
      }
    }
  }

  private notified(payload: string | undefined): void {
    try {
      const { t, k } = JSON.parse(payload ?? '') as { t: number; k: string[] };
      if (typeof t === 'number' && Array.isArray(k)) {
        this.add(k.map(String), t);
        return;
      }
    } catch {}
    // a payload this code did not write: the set can no longer vouch for itself until read again
    this.live = false;
    this.relisten?.();
  }

  private relisten: (() => void) | undefined;

  /**
   * Listens for the facts other instances record and bootstraps from the table; resolves once the
   * first attempt ended (live or not: checks fall back to the table meanwhile). Returns a stop function.
   */
  async watch(logger: { warn(o: object, msg: string): void }): Promise<() => Promise<void>> {
    let stopped = false;
    let client: pg.PoolClient | undefined;
    const drop = () => {
      this.live = false;
      client?.release(true);
      client = undefined;
    };
    const retry = () => {
      if (!stopped) setTimeout(() => void listen(), 1_000).unref();
    };
    this.relisten = () => {
      drop();
      retry();
    };
    const listen = async () => {
      try {
        const c = await this.pool.connect();
        client = c;
        c.on('notification', (n) => {
          if (client === c) this.notified(n.payload);
        });
        c.on('error', (error) => {
          if (client !== c) return;
          logger.warn(
            { err: error },
            'revocation facts lost their change feed; checking the table until it is back',
          );
          drop();
          retry();
        });
        await c.query(`LISTEN ${factsChannel(this.schema)}`);
        // after LISTEN: a fact committed from here on is notified, one committed before is read here
        const { rows } = await this.pool.query<{ key: string; revoked_at: Date }>(
          `SELECT key, revoked_at FROM ${this.schema}.revocation_facts`,
        );
        for (const r of rows) this.add([r.key], r.revoked_at.getTime());
        if (client === c && !stopped) {
          this.live = true;
          this.changes++; // nothing derived before this reading is vouched for
        }
      } catch (error) {
        drop();
        retry();
        logger.warn(
          { err: error },
          'revocation facts could not listen for changes; checking the table meanwhile',
        );
      }
    };
    await listen();
    return async () => {
      stopped = true;
      drop();
    };
  }
}
