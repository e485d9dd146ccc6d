import type { ClientMetadataRecord as Metadata } from '@grantline/events';
import type { ClientRecord } from '@grantline/oauth';
import type pg from 'pg';
import { NotifiedCache } from './change-feed.ts';
import { clientsChannel } from './clients.ts';

const PRINTABLE = /^[\x20-\x7e]{1,200}$/;

/**
 * Client lookups on the hot path: a short-lived per-instance cache in front of the projection table.
 * Only found clients are cached (a client registered a moment ago is found on its first request).
 * While `watch` listens, the projection's notification evicts a changed client at once, so a deleted
 * or disabled client or a rotated secret takes effect as soon as the projection has it; without a
 * listening connection nothing is cached.
 */
export class ClientDirectory {
  private readonly cache: NotifiedCache<ClientRecord | undefined>;

  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
    ttlMs = 1_000,
  ) {
    this.cache = new NotifiedCache(ttlMs);
  }

  /** Listens for the projection's changes (evicting each changed client); returns a stop function. */
  watch(logger: { warn(o: object, msg: string): void }): () => Promise<void> {
    return this.cache.watch(this.pool, clientsChannel(this.schema), logger, 'client directory');
  }

  async get(clientId: string): Promise<ClientRecord | undefined> {
    const hit = this.cache.get(clientId);
    if (hit) return hit.value;
    return this.read(clientId);
  }

  /** The client as the projection has it now, past the cache (which it refreshes). */
  async read(clientId: string): Promise<ClientRecord | undefined> {
    // no registered id has control characters, and Postgres text cannot hold NUL: unknown, not an error
    if (!PRINTABLE.test(clientId)) return undefined;
    return this.cache.load(
      clientId,
      () => this.query(clientId),
      (record) => record !== undefined,
    );
  }

  private async query(clientId: string): Promise<ClientRecord | undefined> {
    const { rows } = await this.pool.query<{
      status: ClientRecord['status'];
      metadata: Metadata;
      secret_digest: string | null;
      served_resources: string[];
    }>(
      `SELECT status, metadata, secret_digest, served_resources FROM ${this.schema}.clients WHERE client_id = $1`,
      [clientId],
    );
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
      servedResources: row.served_resources,
      redirectUris: m.redirectUris,
      jwks: m.jwks as ClientRecord['jwks'],
      jwksUri: m.jwksUri,
    };
    return record;
  }
}
