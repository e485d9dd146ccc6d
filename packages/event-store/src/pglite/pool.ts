import { EventEmitter } from 'node:events';
import type { PGlite, Results } from '@electric-sql/pglite';
import type pg from 'pg';

/**
 * PGlite (Postgres compiled to WASM, in process) behind the part of `pg.Pool` Grantline uses: pool
 * and client `query` (text or `{ text, values }`), `connect`/`release`, LISTEN through a client's
 * `notification` events, `end`. So the event store, the relay and every projection run unchanged on
 * it: the embedded adapter is the Postgres adapter on an in-process Postgres.
 *
 * PGlite has one session. A client that opens a transaction (`BEGIN`) holds it until `COMMIT` or
 * `ROLLBACK`, and every other query waits, as it would wait for a row lock on a real server; a
 * statement outside a transaction runs on its own. Values come back as `pg` returns them (int8,
 * numeric and xid8 as strings, timestamps as Dates, json parsed), so callers see no difference.
 */
export const pglitePool = (db: PGlite): pg.Pool => new PGlitePool(db) as unknown as pg.Pool;

/** Postgres type OIDs whose text `pg` passes through as strings, not numbers. */
const AS_TEXT = [20 /* int8 */, 1700 /* numeric */, 5069 /* xid8 */, 28 /* xid */];
const parsers = Object.fromEntries(AS_TEXT.map((oid) => [oid, (value: string) => value]));

type QueryInput = string | { text: string; values?: unknown[] };

class Gate {
  private tail: Promise<void> = Promise.resolve();
  /** Resolves with a release function once every earlier holder released. */
  acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const ready = this.tail.then(() => release);
    this.tail = this.tail.then(() => held);
    return ready;
  }
}

const toResult = (r: Results): pg.QueryResult =>
  ({
    rows: r.rows,
    rowCount: r.rows.length > 0 ? r.rows.length : (r.affectedRows ?? 0),
    fields: r.fields,
    command: '',
    oid: 0,
  }) as unknown as pg.QueryResult;

/** `SELECT pg_notify($1, $2)` as the event store wakes its relay with it */
const NOTIFY = /^\s*SELECT\s+pg_notify\(\$1,\s*\$2\)\s*;?\s*$/i;

class PGlitePool extends EventEmitter {
  readonly gate = new Gate();
  /** LISTENers of this process, by channel: a notification sent through the pool reaches them directly */
  readonly localListeners = new Map<string, Set<(payload: string) => void>>();

  constructor(readonly db: PGlite) {
    super();
  }

  /** Runs one statement (or a parameterless script of several) on the session. */
  async run(input: QueryInput, values?: unknown[]): Promise<pg.QueryResult> {
    const text = typeof input === 'string' ? input : input.text;
    const params = (typeof input === 'string' ? values : (input.values ?? values)) ?? [];
    if (params.length === 0 && isScript(text)) {
      const results = await this.db.exec(text, { parsers });
      return toResult(results[results.length - 1] ?? { rows: [], fields: [] });
    }
    return toResult(await this.db.query(text, params as unknown[], { parsers }));
  }

  async query(input: QueryInput, values?: unknown[]): Promise<pg.QueryResult> {
    const text = typeof input === 'string' ? input : input.text;
    const params = (typeof input === 'string' ? values : (input.values ?? values)) ?? [];
    if (NOTIFY.test(text)) {
      // every listener of an embedded database is in this process: no round trip through PGlite
      // (which costs a statement, ~2 ms, per wake-up of the relay); outside a transaction, as here,
      // Postgres too delivers at once
      for (const listener of this.localListeners.get(String(params[0]).toLowerCase()) ?? [])
        listener(String(params[1] ?? ''));
      return toResult({ rows: [{ pg_notify: '' }], fields: [] });
    }
    const release = await this.gate.acquire();
    try {
      return await this.run(input, values);
    } finally {
      release();
    }
  }

  async connect(): Promise<PGliteClient> {
    return new PGliteClient(this);
  }

  async end(): Promise<void> {
    if (!this.db.closed) await this.db.close();
  }
}

const BEGIN = /^\s*(BEGIN|START\s+TRANSACTION)\b/i;
const END = /^\s*(COMMIT|ROLLBACK|END)\s*;?\s*$/i;
const LISTEN = /^\s*LISTEN\s+([a-z_][a-z0-9_]*)\s*;?\s*$/i;
const UNLISTEN_ALL = /^\s*UNLISTEN\s+\*/i;

/** More than one statement: semicolons outside quotes and dollar-quoted bodies (migrations). */
const isScript = (text: string): boolean => /;\s*\S/.test(text.replace(/\$\$[\s\S]*?\$\$|'[^']*'/g, ''));

class PGliteClient extends EventEmitter {
  private held: (() => void) | undefined;
  private readonly unlisten: (() => Promise<void>)[] = [];

  constructor(private readonly pool: PGlitePool) {
    super();
  }

  async query(input: QueryInput, values?: unknown[]): Promise<pg.QueryResult> {
    const text = typeof input === 'string' ? input : input.text;
    const listen = LISTEN.exec(text);
    if (listen) {
      const channel = listen[1]!.toLowerCase();
      const deliver = (payload: string) => this.emit('notification', { channel, payload });
      const local = this.pool.localListeners.get(channel) ?? new Set();
      this.pool.localListeners.set(channel, local.add(deliver));
      const stopSql = await this.pool.db.listen(channel, deliver);
      this.unlisten.push(async () => {
        local.delete(deliver);
        await stopSql();
      });
      return toResult({ rows: [], fields: [] });
    }
    if (UNLISTEN_ALL.test(text)) {
      await this.stopListening();
      if (!text.includes(';')) return toResult({ rows: [], fields: [] });
    }
    if (this.held) {
      try {
        return await this.pool.run(input, values);
      } finally {
        if (END.test(text)) this.endTransaction();
      }
    }
    if (BEGIN.test(text)) {
      this.held = await this.pool.gate.acquire();
      try {
        return await this.pool.run(input, values);
      } catch (error) {
        this.endTransaction();
        throw error;
      }
    }
    return this.pool.query(input, values);
  }

  private endTransaction(): void {
    const release = this.held;
    this.held = undefined;
    release?.();
  }

  private async stopListening(): Promise<void> {
    for (const stop of this.unlisten.splice(0)) await stop().catch(() => {});
  }

  /** Back to the pool: an open transaction is rolled back, listening stops. */
  release(_destroy?: boolean): void {
    void this.stopListening();
    if (this.held) {
      void this.pool
        .run('ROLLBACK')
        .catch(() => {})
        .finally(() => this.endTransaction());
    }
  }
}
