import type { ClientMetadataRecord as Metadata } from '@grantline/events';
import type { ConsumedEvent } from '@grantline/message-bus';
import type { ClientRecord } from '@grantline/oauth';
import type pg from 'pg';

const PRINTABLE = /^[\x20-\x7e]{1,200}$/;
const SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post']);

type M = { clientId: string; metadata?: Metadata; secretDigest?: string };

/** The token service's read model of registry clients: one row per client. Rebuildable from the topic. */
export const clientsTable = (schema: string) => `
  CREATE TABLE IF NOT EXISTS ${schema}.clients (
    client_id text PRIMARY KEY,
    status text NOT NULL,
    metadata jsonb NOT NULL,
    secret_digest text,
    updated_at timestamptz NOT NULL DEFAULT now()
  )`;

/** eventType -> reducer, applied inside the consumer's transaction. */
export const clientsProjection = (schema: string) => {
  const t = `${schema}.clients`;
  const reducers: Record<string, (d: M, tx: pg.PoolClient) => Promise<unknown>> = {
    ClientRegistered: (d, tx) =>
      tx.query(
        `INSERT INTO ${t} (client_id, status, metadata, secret_digest) VALUES ($1, 'active', $2, $3)
         ON CONFLICT (client_id) DO NOTHING`,
        [d.clientId, JSON.stringify(d.metadata), d.secretDigest ?? null],
      ),
    // A client moved off the secret methods loses its secret: moved back, it authenticates only with
    // the new one the registry issues (a ClientSecretRotated right after this event), never the old.
    ClientMetadataUpdated: (d, tx) =>
      tx.query(
        `UPDATE ${t} SET metadata = $2, updated_at = now(),
           secret_digest = CASE WHEN $3 THEN secret_digest END
         WHERE client_id = $1`,
        [
          d.clientId,
          JSON.stringify(d.metadata),
          SECRET_METHODS.has(d.metadata?.tokenEndpointAuthMethod ?? ''),
        ],
      ),
    ClientSecretRotated: (d, tx) =>
      tx.query(`UPDATE ${t} SET secret_digest = $2, updated_at = now() WHERE client_id = $1`, [
        d.clientId,
        d.secretDigest,
      ]),
    ClientDisabled: (d, tx) =>
      tx.query(`UPDATE ${t} SET status = 'disabled', updated_at = now() WHERE client_id = $1`, [d.clientId]),
    ClientDeleted: (d, tx) =>
      tx.query(`UPDATE ${t} SET status = 'deleted', updated_at = now() WHERE client_id = $1`, [d.clientId]),
  };
  return async (event: ConsumedEvent, tx: pg.PoolClient) => {
    const reducer = reducers[event.type];
    if (!reducer) return;
    const data = event.data as M;
    await reducer(data, tx);
    // delivered at commit to every instance's ClientDirectory, which forgets its cached copy
    await tx.query('SELECT pg_notify($1, $2)', [clientsChannel(schema), data.clientId]);
  };
};

const clientsChannel = (schema: string) => `${schema}_clients`;

/**
 * Client lookups on the hot path: a short-lived per-instance cache in front of the projection table.
 * Only found clients are cached (a client registered a moment ago is found on its first request).
 * While `watch` listens, the projection's notification evicts a changed client at once, so a deleted
 * or disabled client or a rotated secret takes effect as soon as the projection has it; without a
 * listening connection nothing is cached.
 */
export class ClientDirectory {
  private readonly cache = new Map<string, { record: ClientRecord; until: number }>();
  private listening = false;
  /** bumped by every change notification: a lookup that raced one does not cache what it read */
  private changes = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    private readonly ttlMs = 1_000,
  ) {}

  /** Listens for the projection's changes (evicting each changed client); returns a stop function. */
  watch(logger: { warn(o: object, msg: string): void }): () => Promise<void> {
    let stopped = false;
    let client: pg.PoolClient | undefined;
    const listen = async () => {
      try {
        client = await this.pool.connect();
        client.on('notification', (n) => {
          this.changes++;
          if (n.payload) this.cache.delete(n.payload);
        });
        client.on('error', (error) => {
          this.listening = false;
          this.cache.clear();
          logger.warn({ err: error }, 'client directory lost its change feed; not caching until it is back');
          client?.release(true);
          client = undefined;
          if (!stopped) setTimeout(listen, 1_000).unref();
        });
        await client.query(`LISTEN ${clientsChannel(this.schema)}`);
        this.cache.clear(); // whatever changed while not listening
        this.listening = true;
      } catch (error) {
        client?.release(true);
        client = undefined;
        if (!stopped) setTimeout(listen, 1_000).unref();
        logger.warn({ err: error }, 'client directory could not listen for changes; retrying');
      }
    };
    void listen();
    return async () => {
      stopped = true;
      this.listening = false;
      client?.release(true);
      client = undefined;
    };
  }

  async get(clientId: string): Promise<ClientRecord | undefined> {
    const hit = this.cache.get(clientId);
    if (hit && hit.until > Date.now()) return hit.record;
    return this.read(clientId);
  }

  /** The client as the projection has it now, past the cache (which it refreshes). */
  async read(clientId: string): Promise<ClientRecord | undefined> {
    // no registered id has control characters, and Postgres text cannot hold NUL: unknown, not an error
    if (!PRINTABLE.test(clientId)) return undefined;
    const changesBefore = this.changes;
    const { rows } = await this.pool.query<{
      status: ClientRecord['status'];
      metadata: Metadata;
      secret_digest: string | null;
    }>(`SELECT status, metadata, secret_digest FROM ${this.schema}.clients WHERE client_id = $1`, [clientId]);
    const row = rows[0];
    if (!row) return undefined;
    const m = row.metadata;
    const record: ClientRecord = {
      clientId,
      clientName: m.clientName,
      logoUri: m.logoUri,
      status: row.status,
      tokenEndpointAuthMethod: m.tokenEndpointAuthMethod,
      secretDigest: row.secret_digest ?? undefined,
      grantTypes: m.grantTypes,
      scopes: m.scopes,
      resources: m.resources,
      redirectUris: m.redirectUris,
      jwks: m.jwks as ClientRecord['jwks'],
      jwksUri: m.jwksUri,
    };
    if (!this.listening || this.changes !== changesBefore) return record;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(clientId, { record, until: Date.now() + this.ttlMs });
    return record;
  }
}
