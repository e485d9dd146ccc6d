import type pg from 'pg';

/** The relay of this process, which the store wakes directly while it is the leader. */
export interface LocalRelay {
  readonly isLeader: boolean;
  wake(): void;
}

/**
 * Wakes the relay after commits: in process when this process's relay is the leader (no round trip
 * to Postgres on the write path), else with a NOTIFY on `<schema>_events` for the leader elsewhere.
 * The NOTIFY is coalesced: one in flight at a time, and one more after it when commits happened
 * meanwhile, so every commit is followed by a notification without one per commit.
 */
export class RelayWakeUp {
  private sending = false;
  private again = false;
  constructor(
    private readonly pool: pg.Pool,
    private readonly channel: string,
    private readonly local: LocalRelay | undefined,
  ) {}

  poke(): void {
    if (this.local?.isLeader) {
      this.local.wake();
      return;
    }
    if (this.sending) {
      this.again = true;
      return;
    }
    this.sending = true;
    this.pool
      .query('SELECT pg_notify($1, $2)', [this.channel, ''])
      .catch(() => {}) // the relay's poll is the safety net
      .finally(() => {
        this.sending = false;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }
}
