import { setTimeout as sleep } from 'node:timers/promises';
import type { RecordedEvent } from '@grantline/events';
import { ATTRS, type Logger, lazyInstruments, METRICS } from '@grantline/telemetry';
import type pg from 'pg';
import { isConnectionError } from './errors.ts';
import { assertSchemaName } from './postgres/migrations.ts';
import { prepared } from './postgres/prepared.ts';
import { EVENT_COLUMNS, type EventRow, toRecordedEvent } from './postgres/store.ts';

/** Where the relay sends committed events (the Kafka adapter in production). Resolves once durable. */
export interface EventPublisher {
  publish(events: readonly RecordedEvent[]): Promise<void>;
}

export interface RelayOptions {
  pool: pg.Pool;
  schema: string;
  publisher: EventPublisher;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** checkpoint name; two relays with the same name elect one leader (default `kafka`) */
  name?: string;
  batchSize?: number;
  /** safety-net poll when no notification arrives, e.g. after a transaction that held the gate back ends */
  pollIntervalMs?: number;
  /**
   * the least time between the starts of two drains (default 2 ms): commits arriving meanwhile go
   * out in one batch, one query and one Kafka request, instead of one drain per commit under load
   */
  minIntervalMs?: number;
  /** fault injection for tests: runs after a batch is published and before its checkpoint is written */
  beforeCheckpoint?: (events: readonly RecordedEvent[]) => Promise<void> | void;
}

/**
 * The least time between two reads of the gate. Reading pg_locks briefly holds every lock-manager
 * partition, which each writer's lock requests wait for: under a store's own sustained writes (which
 * hold the gate back anyway) reads are kept to 50 a second. A store that writes rarely (consent) reads
 * it on the first look after a wake-up, at no delay.
 */
const GATE_READ_INTERVAL_MS = 20;

const instruments = lazyInstruments('@grantline/event-store', (meter) => ({
  published: meter.createCounter(METRICS.relayPublished, { description: 'events published by the relay' }),
  batchDuration: meter.createHistogram(METRICS.relayBatchDuration, { unit: 's' }),
  lag: meter.createHistogram(METRICS.relayLag, {
    unit: 's',
    description: 'time from an event being recorded to Kafka acknowledging it',
  }),
}));

interface Checkpoint {
  transactionId: string;
  position: string;
}

/**
 * The relay's statements. The drain walks the `(transaction_id, position)` index from the
 * checkpoint. The transaction id is selected as text under its own alias: `ORDER BY transaction_id`
 * next to an output column of that name would sort the text (`'100000' < '99999'`) and skip events.
 *
 * The drain reads below the oldest transaction still running in the cluster (`pg_snapshot_xmin`):
 * every transaction that could still commit an event it has not seen is at or above it. That bound
 * is held back by any transaction of any service, so when it holds committed events back, the relay
 * reads a finer gate and drains again below it. The gate is the oldest transaction running at its
 * snapshot that is not shown to be a non-writer, else the snapshot's xmax. A non-writer is a
 * transaction whose own transaction-id lock is visible in `pg_locks` while it holds no lock on this
 * schema's `events` table. Writers lock the table before they have a transaction id (an insert when it
 * is planned, `PostgresEventStore.transaction` right after `BEGIN`), so one that is left out either
 * never writes events or has committed since the snapshot: its events are visible to the drain, a
 * later statement. A transaction whose id lock is not visible yet (it is being assigned) stays in the
 * gate. The gate is read in its own statement, before the drain whose snapshot must come later.
 */
export const relayQueries = (schema: string) => ({
  /**
   * One round trip per batch: saves the checkpoint of the batch published before (when $6 is true:
   * it is ($1, $2)), and reads the next committed batch beyond ($1, $2) below the cluster's xmin or
   * the gate $3 (if given), at most $4 rows, with the first event beyond the bound, if any, flagged
   * `held` (committed, waiting for an older transaction: the relay looks again soon).
   */
  drain: `WITH saved AS (
       UPDATE ${schema}.relay_checkpoints SET transaction_id = $1::xid8, position = $2::bigint, updated_at = now()
       WHERE relay = $5 AND $6::boolean),
     bound AS MATERIALIZED (
       SELECT greatest(pg_snapshot_xmin(snap), least(coalesce($3::xid8, '0'::xid8), pg_snapshot_xmax(snap))) AS xid
       FROM (SELECT pg_current_snapshot() AS snap) s)
     (SELECT ${EVENT_COLUMNS}, e.transaction_id::text AS relay_transaction_id, false AS held
       FROM ${schema}.events e
       WHERE (e.transaction_id, e.position) > ($1::xid8, $2::bigint) AND e.transaction_id < (SELECT xid FROM bound)
       ORDER BY e.transaction_id, e.position LIMIT $4)
     UNION ALL
     (SELECT ${EVENT_COLUMNS}, e.transaction_id::text, true
       FROM ${schema}.events e
       -- beyond the checkpoint and at or above the bound, as one range: from the later of the two
       WHERE (e.transaction_id, e.position) >= (
         greatest((SELECT xid FROM bound), $1::xid8),
         CASE WHEN (SELECT xid FROM bound) > $1::xid8 THEN 0 ELSE $2::bigint + 1 END)
       ORDER BY e.transaction_id, e.position LIMIT 1)`,
  /** the checkpoint alone, when no drain follows soon */
  save: `UPDATE ${schema}.relay_checkpoints SET transaction_id = $2::xid8, position = $3, updated_at = now()
     WHERE relay = $1`,
  gate: `WITH s AS (SELECT pg_current_snapshot() AS snap),
       l AS MATERIALIZED (SELECT locktype, relation, database, transactionid, mode, granted, virtualtransaction FROM pg_locks),
       writing AS (
         SELECT virtualtransaction FROM l
         WHERE locktype = 'relation' AND relation = '${schema}.events'::regclass
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())),
       non_writers AS (
         SELECT transactionid FROM l
         WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted
           AND NOT EXISTS (SELECT 1 FROM writing w WHERE w.virtualtransaction = l.virtualtransaction))
     SELECT coalesce(
       (SELECT min(x) FROM s, pg_snapshot_xip(s.snap) AS x
         WHERE NOT EXISTS (SELECT 1 FROM non_writers n WHERE n.transactionid = x::xid)),
       (SELECT pg_snapshot_xmax(snap) FROM s))::text AS gate`,
});

/**
 * Publishes committed events from one service's event store, at least once, in (transaction id,
 * position) order, reading only below a bound that every transaction still able to commit an event
 * is at or above (the xmin, then the gate; above): an event whose transaction commits after later
 * ones is waited for, never skipped. The checkpoint lives in Postgres and moves only after the publisher
 * confirms. A session advisory lock elects one active relay per schema and name; others stand by.
 */
export class Relay {
  private readonly schema: string;
  private readonly name: string;
  private readonly sql: ReturnType<typeof relayQueries>;
  private client: pg.PoolClient | undefined;
  private checkpoint: Checkpoint | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private stopIdling: (() => void) | undefined;
  private woken = false;
  /**
   * The highest gate read in this leadership. A gate stays a valid bound for every later drain (what
   * lies below it has committed or never will), so each drain reads below it or the xmin, whichever
   * is higher (and never above the snapshot's xmax).
   */
  private gate: string | null = null;
  private gateReadAt = Number.NEGATIVE_INFINITY;
  /** the checkpoint moved past a published batch and is not saved yet */
  private unsaved = false;

  constructor(private readonly options: RelayOptions) {
    this.schema = assertSchemaName(options.schema);
    this.name = options.name ?? 'kafka';
    this.sql = relayQueries(this.schema);
  }

  get isLeader(): boolean {
    return this.client !== undefined;
  }

  start(): void {
    this.stopped = false;
    this.running ??= this.loop().finally(() => {
      this.running = undefined;
    });
  }

  /** Stops the loop; with `flush`, publishes what is committed first (graceful shutdown). */
  async stop(options: { flush?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.notify();
    await this.running;
    if (options.flush && this.client)
      await this.drain().catch((e) => this.options.logger.warn({ err: e }, 'relay flush failed'));
    // what was published is not republished by the next leader
    await this.save().catch((e) => this.options.logger.warn({ err: e }, 'relay checkpoint not saved'));
    await this.releaseLeadership();
  }

  /** Commits await publication: drain soon (the event store of the same process calls this). */
  wake(): void {
    this.notify();
  }

  private notify = (): void => {
    this.woken = true;
    this.stopIdling?.();
  };

  private async loop(): Promise<void> {
    let failures = 0;
    let heldBackChecks = 0;
    const pollMs = this.options.pollIntervalMs ?? 1_000;
    while (!this.stopped) {
      try {
        if (!this.client && !(await this.acquireLeadership())) {
          await this.idle(pollMs);
          continue;
        }
        const drained = performance.now();
        const held = await this.drain();
        failures = 0;
        // Committed events held back by the gate are waiting for an older transaction writing this store,
        // whose commit may have woken this relay already (its drain then found it still running): look
        // again soon. Most such transactions end within a millisecond or two, so the first looks come
        // quickly (1, 2, 4 ms, ...) and only a long one is waited out slowly.
        if (held) {
          heldBackChecks++;
          await this.idle(Math.min(pollMs, 2 ** Math.min(heldBackChecks - 1, 10)));
        } else {
          heldBackChecks = 0;
          await this.idle(pollMs);
        }
        // paced: what commits while this wait lasts is drained together
        const pace = (this.options.minIntervalMs ?? 2) - (performance.now() - drained);
        if (pace > 0 && !this.stopped) await sleep(pace);
      } catch (error) {
        failures++;
        const delay = Math.min(5_000, 100 * 2 ** Math.min(failures, 6));
        this.options.logger.warn(
          { err: error, relay: this.name, retryInMs: delay },
          'relay batch failed; retrying',
        );
        if (isConnectionError(error)) await this.releaseLeadership(true);
        await sleep(delay);
      }
    }
  }

  private async idle(ms: number): Promise<void> {
    if (this.woken || this.stopped) {
      this.woken = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.stopIdling = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.stopIdling = undefined;
    this.woken = false;
  }

  private async acquireLeadership(): Promise<boolean> {
    const client = await this.options.pool.connect();
    const lockKey = `grantline.relay.${this.schema}.${this.name}`;
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock(hashtext($1)) AS locked',
      [lockKey],
    );
    if (!rows[0]?.locked) {
      client.release();
      return false;
    }
    client.on('notification', this.notify);
    client.on('error', (e) => this.options.logger.warn({ err: e }, 'relay connection error'));
    await client.query(`LISTEN ${this.schema}_events`);
    // A checkpoint lost in a database crash only means republishing (at-least-once), so its commit
    // need not wait for the WAL flush: that wait would sit on every event's path to Kafka.
    await client.query('SET synchronous_commit TO off');
    await client.query(
      `INSERT INTO ${this.schema}.relay_checkpoints (relay, transaction_id, position) VALUES ($1, '0', 0)
       ON CONFLICT (relay) DO NOTHING`,
      [this.name],
    );
    const { rows: cp } = await client.query<{ transaction_id: string; position: string }>(
      `SELECT transaction_id::text, position::text FROM ${this.schema}.relay_checkpoints WHERE relay = $1`,
      [this.name],
    );
    this.checkpoint = { transactionId: cp[0]!.transaction_id, position: cp[0]!.position };
    this.unsaved = false;
    // a gate is read anew by each leadership: a database that crashed or failed over meanwhile may
    // hand out again the transaction ids above a lost commit
    this.gate = null;
    this.gateReadAt = Number.NEGATIVE_INFINITY;
    this.client = client;
    this.options.logger.info(
      { relay: this.name, schema: this.schema, checkpoint: this.checkpoint },
      'relay is leader',
    );
    return true;
  }

  private async releaseLeadership(destroy = false): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    client.off('notification', this.notify);
    if (!destroy) {
      await client.query('UNLISTEN *; SELECT pg_advisory_unlock_all()').catch(() => {
        destroy = true;
      });
    }
    client.release(destroy);
  }

  /**
   * Publishes every committed event beyond the checkpoint, batch by batch, below the cluster's xmin
   * and, once that holds events back, below the gate. Resolves whether events are still held back.
   * A published batch's checkpoint is saved by the next drain's statement, or alone when none follows.
   */
  private async drain(): Promise<boolean> {
    const client = this.client;
    if (!client || !this.checkpoint) return false;
    const batchSize = this.options.batchSize ?? 500;
    for (;;) {
      const started = performance.now();
      const checkpoint = this.checkpoint;
      type Row = EventRow & { relay_transaction_id: string; held: boolean };
      const { rows }: { rows: Row[] } = await client.query({
        ...prepared(this.sql.drain),
        values: [
          checkpoint.transactionId,
          checkpoint.position,
          this.gate,
          batchSize,
          this.name,
          this.unsaved,
        ],
      });
      this.unsaved = false;
      // by the flag, not by place: the order of a UNION ALL's branches is not promised
      const held: boolean = rows.some((r) => r.held);
      const batch: Row[] = rows.filter((r) => !r.held);
      const last: Row | undefined = batch.at(-1);
      if (last) {
        const events = batch.map(toRecordedEvent);
        await this.options.publisher.publish(events);
        await this.options.beforeCheckpoint?.(events);
        this.checkpoint = { transactionId: last.relay_transaction_id, position: last.position };
        this.unsaved = true;
        this.measure(events, started);
        if (batch.length === batchSize) continue;
      }
      if (!held) {
        await this.save();
        return false;
      }
      // held back, maybe by other services' transactions alone: read the gate (not too often, above)
      if (performance.now() - this.gateReadAt >= GATE_READ_INTERVAL_MS) {
        this.gateReadAt = performance.now();
        const { rows: read } = await client.query<{ gate: string }>(prepared(this.sql.gate));
        const gate = read[0]!.gate;
        // further than the gate already used: drain again below it
        if (this.gate === null || BigInt(gate) > BigInt(this.gate)) {
          this.gate = gate;
          continue;
        }
      }
      // held back by the store's own writers: the relay looks again soon, and what it published is
      // saved now (a request waiting for its event to be relayed reads the saved checkpoint)
      await this.save();
      return true;
    }
  }

  /** Saves the checkpoint of what was published, if no drain has saved it yet. */
  private async save(): Promise<void> {
    const { client, checkpoint } = this;
    if (!this.unsaved || !client || !checkpoint) return;
    await client.query({
      ...prepared(this.sql.save),
      values: [this.name, checkpoint.transactionId, checkpoint.position],
    });
    this.unsaved = false;
  }

  private measure(events: readonly RecordedEvent[], started: number): void {
    const { published, batchDuration, lag } = instruments();
    const attributes = { [ATTRS.relay]: this.name };
    published.add(events.length, attributes);
    batchDuration.record((performance.now() - started) / 1000, attributes);
    // the oldest event of the batch waited longest: its age is the relay's lag behind the store
    let oldest = Number.POSITIVE_INFINITY;
    for (const e of events) oldest = Math.min(oldest, e.time.getTime());
    lag.record(Math.max(0, Date.now() - oldest) / 1000, attributes);
  }
}

/**
 * Waits until the relay named `relay` has published the event at `position` (its checkpoint is at or
 * beyond the event in (transaction id, position) order). Works from any instance: the checkpoint is
 * in Postgres. Resolves true once published, false on timeout.
 */
export const relayedThrough = async (
  pool: pg.Pool,
  schema: string,
  position: string,
  options: { relay?: string; timeoutMs: number },
): Promise<boolean> => {
  const sql = `SELECT (e.transaction_id, e.position) <= (c.transaction_id, c.position) AS relayed
    FROM ${assertSchemaName(schema)}.events e JOIN ${schema}.relay_checkpoints c ON c.relay = $2
    WHERE e.position = $1`;
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const { rows } = await pool.query<{ relayed: boolean }>(sql, [position, options.relay ?? 'kafka']);
    if (rows[0]?.relayed) return true;
    if (Date.now() >= deadline) return false;
    await sleep(5);
  }
};
