import type { ReadModelMigrations } from '@grantline/event-store';
import { type PrivateKeyEntry, unseal } from '@grantline/keys';
import { onEvents } from '@grantline/message-bus';
import type pg from 'pg';

/**
 * Password hashes, kept by this service only (the one that checks passwords). The registry seals
 * each hash to this service's credentials key; the other services' projections never see one.
 * `version` counts password changes, so a re-hash made at sign-in never undoes a later change.
 */
export const credentialsTables: ReadModelMigrations = {
  model: 'credentials',
  migrations: [
    {
      version: 1,
      name: 'credentials, carried over from the users table of older versions',
      // migrate it before the registry directory's people, whose version 2 drops those hashes
      sql: `
        CREATE TABLE IF NOT EXISTS {schema}.credentials (
          user_id text PRIMARY KEY,
          password_hash text NOT NULL,
          version integer NOT NULL
        );
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM information_schema.columns
                     WHERE table_schema = '{schema}' AND table_name = 'users' AND column_name = 'password_hash') THEN
            INSERT INTO {schema}.credentials (user_id, password_hash, version)
              SELECT user_id, password_hash, 1 FROM {schema}.users ON CONFLICT (user_id) DO NOTHING;
          END IF;
        END $$`,
    },
  ],
};

/** A sealed hash this service cannot open: its credentials key does not match the registry's. Not retriable. */
export class UnreadableCredential extends Error {
  override readonly name = 'UnreadableCredential';
  readonly retriable = false;
}

type Sealed = { userId: string; sealedPasswordHash?: string | undefined; passwordHash?: string | undefined };

// UserPasswordRehashed is not applied from the bus: the sign-in that re-hashes writes the table itself
// (Passwords.upgrade), so a forged re-hash on a topic changes nothing. A rebuild from the registry
// topic restores the older hash of the same password, re-hashed again at the next sign-in.
export const credentialsProjection = (schema: string, keys: readonly PrivateKeyEntry[]) => {
  const t = `${schema}.credentials`;
  const open = async (d: Sealed): Promise<string> => {
    // events written before hashes were sealed carry them in clear
    if (d.sealedPasswordHash === undefined && d.passwordHash !== undefined) return d.passwordHash;
    const hash = d.sealedPasswordHash && (await unseal(keys, d.sealedPasswordHash));
    if (!hash)
      throw new UnreadableCredential(
        `the password hash of user ${d.userId} is sealed to a key GRANTLINE_CREDENTIALS_DECRYPTION_KEY does not hold`,
      );
    return hash;
  };
  return onEvents(['UserCreated', 'UserPasswordChanged'], async (event, tx) => {
    switch (event.type) {
      case 'UserCreated':
        return tx.query(
          `INSERT INTO ${t} (user_id, password_hash, version) VALUES ($1, $2, 1) ON CONFLICT (user_id) DO NOTHING`,
          [event.data.userId, await open(event.data)],
        );
      case 'UserPasswordChanged':
        return tx.query(
          `INSERT INTO ${t} (user_id, password_hash, version) VALUES ($1, $2, 1)
           ON CONFLICT (user_id) DO UPDATE SET password_hash = $2, version = ${t}.version + 1`,
          [event.data.userId, await open(event.data)],
        );
      default: {
        const exhaustive: never = event;
        return exhaustive;
      }
    }
  });
};

/** Reads of the credentials read model. */
export class Credentials {
  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  /** A stronger hash of the same password, unless the password changed since `version` was read. */
  async replaceHash(userId: string, hash: string, version: number): Promise<void> {
    await this.pool.query(
      `UPDATE ${this.schema}.credentials SET password_hash = $2 WHERE user_id = $1 AND version = $3`,
      [userId, hash, version],
    );
  }

  async of(userId: string): Promise<{ hash: string; version: number } | undefined> {
    const { rows } = await this.pool.query<{ password_hash: string; version: number }>(
      `SELECT password_hash, version FROM ${this.schema}.credentials WHERE user_id = $1`,
      [userId],
    );
    return rows[0] && { hash: rows[0].password_hash, version: rows[0].version };
  }
}
