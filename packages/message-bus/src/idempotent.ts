import { assertSchemaName, isRetriable } from '@grantline/event-store';
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

/** Postgres errors that say the database, not the message, is the problem: worth a retry, then a crash. */
const TRANSIENT_SQLSTATE = /^(08|40|53|57)/;

/**
 * Wraps a projection so each event is applied exactly once: the read-model change and the
 * `processed_events` row commit in one transaction, and a redelivered event finds its row and is skipped.
 */
export const idempotentProjection = (options: IdempotentProjectionOptions): EventHandler => {
  const schema = assertSchemaName(options.schema);
  return async (event) => {
    const client = await options.pool.connect();
    try {
      await client.query('BEGIN');
      const { rowCount } = await client.query(
        `INSERT INTO ${schema}.processed_events (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
        [options.consumer, event.id],
      );
      if (rowCount === 1) await options.project(event, client);
      await client.query('COMMIT');
      if (rowCount === 1)
        projectionLag().record((Date.now() - Date.parse(event.time)) / 1000, {
          [ATTRS.consumer]: options.consumer,
        });
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw markTransient(error);
    } finally {
      client.release();
    }
  };
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
