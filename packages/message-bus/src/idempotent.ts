import { assertSchemaName, isRetriable, prepared } from '@grantline/event-store';
import { ATTRS, lazyInstruments, METRICS } from '@grantline/telemetry';
import type pg from 'pg';
import type { ConsumedEvent, EventHandler } from './port.ts';

export interface IdempotentProjectionOptions {
  pool: pg.Pool;
  /** the service's schema, whose `processed_events` table records what this consumer has applied */
  schema: string;
  consumer: string;
  /**
   * applies one event to the read model inside the transaction that records it as processed; it never
   * appends events in it (a store's transaction must lock the events table first: see the relay's gate)
   */
  project: (event: ConsumedEvent, tx: pg.PoolClient) => Promise<void>;
}

const projectionLag = lazyInstruments('@grantline/message-bus', (meter) =>
  meter.createHistogram(METRICS.projectionLagSeconds, {
    unit: 's',
    description: 'time from an event being recorded to its projection being committed',
  }),
);

/**
 * Postgres errors that say the database, not the message, is the problem: worth a retry, then a crash
 * (connection, rollback, resources, operator intervention, and a lock not available in time: 55P03).
 */
const TRANSIENT_SQLSTATE = /^(08|40|53|57|55P03)/;

/**
 * Wraps a projection so each event is applied exactly once: the read-model change and the
 * `processed_events` row commit in one transaction, and a redelivered event finds its row and is
 * skipped. `many` applies several events in one transaction (one commit for a run of a topic
 * partition), all or nothing.
 */
export const idempotentProjection = (
  options: IdempotentProjectionOptions,
): EventHandler & { many: (events: readonly ConsumedEvent[]) => Promise<void> } => {
  const schema = assertSchemaName(options.schema);
  const record = prepared(
    `WITH input AS (SELECT id, ord FROM unnest($2::uuid[]) WITH ORDINALITY AS u(id, ord)),
     recorded AS (
       INSERT INTO ${schema}.processed_events (consumer, event_id)
       SELECT DISTINCT $1::text, id FROM input ORDER BY 2 ON CONFLICT DO NOTHING RETURNING event_id)
     SELECT min(input.ord) AS ord FROM input JOIN recorded ON recorded.event_id = input.id GROUP BY input.id`,
  );
  const many = async (events: readonly ConsumedEvent[]) => {
    let client: pg.PoolClient | undefined;
    try {
      // inside: a database that cannot be reached is a transient failure (retried, then a crash), never a bad event
      client = await options.pool.connect();
      await client.query('BEGIN');
      // the position of each event recorded now: the first of an id delivered twice in one run (the
      // relay publishes at least once), none of one processed before
      const { rows } = await client.query<{ ord: string }>({
        ...record,
        values: [options.consumer, events.map((e) => e.id)],
      });
      const fresh = new Set(rows.map((r) => Number(r.ord) - 1));
      const applied = events.filter((_, i) => fresh.has(i));
      for (const event of applied) await options.project(event, client);
      // a transaction a statement aborted (an error caught on the way) answers COMMIT with a rollback
      const { command } = await client.query('COMMIT');
      if (command === 'ROLLBACK')
        throw Object.assign(new Error('the projection transaction was rolled back'), { retriable: true });
      const now = Date.now();
      for (const event of applied)
        projectionLag().record((now - Date.parse(event.time)) / 1000, { [ATTRS.consumer]: options.consumer });
    } catch (error) {
      await client?.query('ROLLBACK').catch(() => {});
      throw markTransient(error);
    } finally {
      client?.release();
    }
  };
  const one = (event: ConsumedEvent) => many([event]);
  return Object.assign(one, { many });
};

/**
 * Runs a projection that is idempotent by itself (`Projection.applyRun`): each run in one statement
 * on the pool, in autocommit, with no processed-events row. A redelivered event is applied again,
 * which changes nothing. Failures are classified as `idempotentProjection`'s.
 */
export const selfIdempotentProjection = (options: {
  pool: pg.Pool;
  consumer: string;
  applyRun: (events: readonly ConsumedEvent[], db: pg.Pool) => Promise<void>;
}): EventHandler & { many: (events: readonly ConsumedEvent[]) => Promise<void> } => {
  const many = async (events: readonly ConsumedEvent[]) => {
    try {
      await options.applyRun(events, options.pool);
    } catch (error) {
      throw markTransient(error);
    }
    const now = Date.now();
    for (const event of events)
      projectionLag().record((now - Date.parse(event.time)) / 1000, { [ATTRS.consumer]: options.consumer });
  };
  return Object.assign((event: ConsumedEvent) => many([event]), { many });
};

const markTransient = (error: unknown): unknown => {
  const code = (error as { code?: unknown }).code;
  if (
    typeof code === 'string' &&
    (TRANSIENT_SQLSTATE.test(code) || code.startsWith('E')) &&
    !isRetriable(error)
  ) {
    Object.assign(error as object, { retriable: true });
  }
  return error;
};
