import { createPrivateKey, type KeyObject, randomBytes } from 'node:crypto';
import { type Clock, systemClock } from '@grantline/clock';
import type { Logger } from '@grantline/telemetry';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type pg from 'pg';
import { signEs256 } from './jws.ts';
import type { KeyEncryptionKey } from './kek.ts';

export interface SigningKey {
  kid: string;
  alg: 'ES256';
  /** signs a JWT with this key; `kid` and `alg` are set in the header */
  sign(header: { typ?: string }, payload: object): string;
}

interface KeyRow {
  kid: string;
  alg: 'ES256';
  public_jwk: JWK;
  private_jwe: string;
  activates_at: Date;
  retires_at: Date | null;
}

export interface KeyManagerOptions {
  pool: pg.Pool;
  schema: string;
  kek: KeyEncryptionKey;
  logger: Pick<Logger, 'info' | 'warn'>;
  /** how long a new key is published in the JWKS before it signs (resource servers' JWKS caches) */
  rotationLeadSeconds: number;
  /** how long a retired key stays published: at least the longest token lifetime */
  retainSeconds: number;
  /** how often each instance reloads keys (another instance may have rotated) */
  refreshIntervalMs?: number;
  /** when a key activates, when a retired one is dropped, which one signs now (default: the system clock) */
  clock?: Clock;
}

/**
 * Signing keys of the token service. Private keys never leave it: stored encrypted with the
 * key-encryption key, decrypted only in memory, never in events, logs or responses. Rotation
 * publishes the new key first and signs with it after the lead time; the old key stays in the JWKS
 * until its tokens have expired.
 */
export class KeyManager {
  private rows: KeyRow[] = [];
  private readonly privateKeys = new Map<string, KeyObject>();
  private timer: NodeJS.Timeout | undefined;
  private readonly clock: Clock;

  constructor(private readonly options: KeyManagerOptions) {
    this.clock = options.clock ?? systemClock;
  }

  private get table() {
    return `${this.options.schema}.signing_keys`;
  }

  async start(): Promise<void> {
    const client = await this.options.pool.connect();
    try {
      // one instance creates the table and the first key; the others wait and load it (two
      // CREATE TABLE IF NOT EXISTS at once may both miss the table, and one then fails on pg_type)
      await client.query('SELECT pg_advisory_lock(hashtext($1))', [this.table]);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.table} (
        kid text PRIMARY KEY, alg text NOT NULL, public_jwk jsonb NOT NULL, private_jwe text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(), activates_at timestamptz NOT NULL, retires_at timestamptz)`);
      const { rows } = await client.query(`SELECT 1 FROM ${this.table} LIMIT 1`);
      if (rows.length === 0) await this.insertKey(client, 0);
    } finally {
      // a connection whose unlock failed may still hold the session lock: closed, not pooled
      const unlocked = await client
        .query('SELECT pg_advisory_unlock(hashtext($1))', [this.table])
        .then(() => true)
        .catch(() => false);
      client.release(!unlocked);
    }
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((e) => this.options.logger.warn({ err: e }, 'signing key refresh failed'));
    }, this.options.refreshIntervalMs ?? 5_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async insertKey(db: Pick<pg.PoolClient, 'query'>, activatesInSeconds: number): Promise<string> {
    const kid = randomBytes(12).toString('base64url');
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
    const privateJwe = await this.options.kek.encrypt(JSON.stringify(await exportJWK(privateKey)), kid);
    await db.query(
      `INSERT INTO ${this.table} (kid, alg, public_jwk, private_jwe, activates_at)
       VALUES ($1, 'ES256', $2, $3, $4)`,
      [kid, JSON.stringify(publicJwk), privateJwe, new Date(this.clock.now() + activatesInSeconds * 1000)],
    );
    return kid;
  }

  /** Publishes a new key now, signing with it after the lead time; retires the current one then. */
  async rotate(): Promise<{ kid: string; activatesAt: Date }> {
    const client = await this.options.pool.connect();
    try {
      await client.query('BEGIN');
      const kid = await this.insertKey(client, this.options.rotationLeadSeconds);
      const { rows } = await client.query<{ activates_at: Date }>(
        `SELECT activates_at FROM ${this.table} WHERE kid = $1`,
        [kid],
      );
      const activatesAt = rows[0]!.activates_at;
      await client.query(`UPDATE ${this.table} SET retires_at = $2 WHERE kid <> $1 AND retires_at IS NULL`, [
        kid,
        activatesAt,
      ]);
      await client.query('COMMIT');
      this.options.logger.info({ kid, activatesAt }, 'signing key rotation scheduled');
      await this.refresh();
      return { kid, activatesAt };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async refresh(): Promise<void> {
    const { rows } = await this.options.pool.query<KeyRow>(
      `SELECT kid, alg, public_jwk, private_jwe, activates_at, retires_at FROM ${this.table}
       WHERE retires_at IS NULL OR retires_at > $1
       ORDER BY activates_at DESC`,
      [new Date(this.clock.now() - this.options.retainSeconds * 1000)],
    );
    for (const row of rows) {
      if (!this.privateKeys.has(row.kid)) {
        const jwk = JSON.parse(await this.openPrivateKey(row)) as JWK;
        this.privateKeys.set(row.kid, createPrivateKey({ key: jwk as never, format: 'jwk' }));
      }
    }
    this.rows = rows;
  }

  private async openPrivateKey(row: KeyRow): Promise<string> {
    try {
      return await this.options.kek.decrypt(row.private_jwe);
    } catch (error) {
      throw new SigningKeysUnreadable(row.kid, error);
    }
  }

  /** The key to sign with now: the newest one whose activation time has come. */
  signingKey(now = this.clock.now()): SigningKey {
    const row = this.rows.find((r) => r.activates_at.getTime() <= now);
    if (!row) throw new Error('no active signing key');
    const key = this.privateKeys.get(row.kid)!;
    return {
      kid: row.kid,
      alg: row.alg,
      sign: (header, payload) => signEs256(key, { ...header, kid: row.kid }, payload),
    };
  }

  /** The published key set: upcoming, current and recently retired public keys. */
  jwks(): { keys: JWK[] } {
    return { keys: this.rows.map((r) => r.public_jwk) };
  }
}

/**
 * The signing keys in the database were encrypted with another key-encryption key than the one
 * configured: a start-up failure with its cause and remedy (the service never signs with them).
 */
export class SigningKeysUnreadable extends Error {
  override readonly name = 'SigningKeysUnreadable';
  readonly startup = true;
  constructor(kid: string, cause: unknown) {
    super(
      `the signing key ${kid} in the database cannot be opened with the configured GRANTLINE_KEY_ENCRYPTION_KEY. ` +
        'It was encrypted with another one: the key-encryption key changed, or the local secrets file ' +
        '(.grantline/dev-secrets.json, or secrets.json in GRANTLINE_DATA_DIR) was regenerated against an existing ' +
        'database. Restore the key-encryption key that encrypted the keys, ' +
        'or start with an empty database (tokens signed so far will then no longer verify).',
      { cause },
    );
  }
}
