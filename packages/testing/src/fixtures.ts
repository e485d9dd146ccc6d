import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Infrastructure } from './infra.ts';

/** A short unique name, safe for databases, schemas and topics. */
export const uniqueName = (prefix = 't'): string =>
  `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;

export const databaseUrlFor = (adminUrl: string, database: string): string => {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
};

export interface TestDatabase {
  url: string;
  pool: pg.Pool;
  /** drops the database (after closing the pool) */
  drop(): Promise<void>;
}

/** A database of the test's own, created through the admin URL and dropped afterwards. */
export const createTestDatabase = async (infra: Infrastructure, poolSize = 10): Promise<TestDatabase> => {
  const name = uniqueName('gl');
  const admin = new pg.Client({ connectionString: infra.databaseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrlFor(infra.databaseUrl, name);
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  pool.on('error', () => {});
  return {
    url,
    pool,
    drop: async () => {
      await pool.end();
      const c = new pg.Client({ connectionString: infra.databaseUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
};

/** Polls until `check` returns a value other than undefined, or fails with what it last saw. */
export const eventually = async <T>(
  check: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 30_000, intervalMs = 50, what = 'condition' } = {},
): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
};

/**
 * Applies each event to a projection as the runtime does, one transaction per event (without the
 * runtime's processed-events record): for tests of a read model's projection on its own.
 */
export const feedProjection = async <E>(
  pool: pg.Pool,
  projection: { apply(event: E, tx: pg.PoolClient): Promise<void> },
  events: readonly E[],
): Promise<void> => {
  for (const event of events) {
    const tx = await pool.connect();
    try {
      await tx.query('BEGIN');
      await projection.apply(event, tx);
      await tx.query('COMMIT');
    } catch (error) {
      await tx.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      tx.release();
    }
  }
};
