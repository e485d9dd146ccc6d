import type { ConsumedEvent } from '@grantline/message-bus';
import type pg from 'pg';

/**
 * The registry's users, organisations and scope catalogue, as the other services read them. No
 * password hash: only the authorization service keeps those (its own credentials projection).
 */
export const peopleTables = (schema: string) => `
  CREATE TABLE IF NOT EXISTS ${schema}.users (
    user_id text PRIMARY KEY,
    username text NOT NULL UNIQUE,
    status text NOT NULL,
    organisations text[] NOT NULL,
    credentials_changed_at timestamptz
  );
  -- older versions stored every user's password hash in every service
  ALTER TABLE ${schema}.users DROP COLUMN IF EXISTS password_hash;
  CREATE TABLE IF NOT EXISTS ${schema}.organisations (organisation_id text PRIMARY KEY, name text NOT NULL);
  CREATE TABLE IF NOT EXISTS ${schema}.scopes (name text PRIMARY KEY, description text NOT NULL)`;

type D = Record<string, string | string[]>;

export const peopleProjection = (schema: string) => {
  const reducers: Record<string, (d: D, tx: pg.PoolClient, time: Date) => Promise<unknown>> = {
    UserCreated: (d, tx) =>
      tx.query(
        `INSERT INTO ${schema}.users (user_id, username, status, organisations)
         VALUES ($1, $2, 'active', $3) ON CONFLICT (user_id) DO NOTHING`,
        [d.userId, d.username, d.organisations],
      ),
    UserAddedToOrganisation: (d, tx) =>
      tx.query(
        `UPDATE ${schema}.users SET organisations = array_append(array_remove(organisations, $2), $2)
         WHERE user_id = $1`,
        [d.userId, d.organisationId],
      ),
    UserRemovedFromOrganisation: (d, tx) =>
      tx.query(
        `UPDATE ${schema}.users SET organisations = array_remove(organisations, $2) WHERE user_id = $1`,
        [d.userId, d.organisationId],
      ),
    UserDisabled: (d, tx, time) =>
      tx.query(
        `UPDATE ${schema}.users SET status = 'disabled', credentials_changed_at = $2 WHERE user_id = $1`,
        [d.userId, time],
      ),
    UserPasswordChanged: (d, tx, time) =>
      tx.query(`UPDATE ${schema}.users SET credentials_changed_at = $2 WHERE user_id = $1`, [d.userId, time]),
    OrganisationCreated: (d, tx) =>
      tx.query(
        `INSERT INTO ${schema}.organisations (organisation_id, name) VALUES ($1, $2)
         ON CONFLICT (organisation_id) DO UPDATE SET name = $2`,
        [d.organisationId, d.name],
      ),
    ScopeDefined: (d, tx) =>
      tx.query(
        `INSERT INTO ${schema}.scopes (name, description) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET description = $2`,
        [d.name, d.description],
      ),
  };
  return async (event: ConsumedEvent, tx: pg.PoolClient) => {
    await reducers[event.type]?.(event.data as D, tx, new Date(event.time));
  };
};

export interface UserRecord {
  userId: string;
  username: string;
  status: 'active' | 'disabled';
  organisations: string[];
  /** when the password last changed or the user was disabled: refresh tokens older than this die */
  credentialsChangedAt?: Date | undefined;
}

type UserRow = {
  user_id: string;
  username: string;
  status: UserRecord['status'];
  organisations: string[];
  credentials_changed_at: Date | null;
};

const toUser = (r: UserRow): UserRecord => ({
  userId: r.user_id,
  username: r.username,
  status: r.status,
  organisations: r.organisations,
  credentialsChangedAt: r.credentials_changed_at ?? undefined,
});

/** Reads of the people read model. */
export class People {
  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  async userByName(username: string): Promise<UserRecord | undefined> {
    // what a login form can send, not what a username can be (Postgres text cannot hold NUL)
    if (username.length > 200 || username.includes('\u0000')) return undefined;
    const { rows } = await this.pool.query<UserRow>(
      `SELECT * FROM ${this.schema}.users WHERE username = $1`,
      [username],
    );
    return rows[0] && toUser(rows[0]);
  }

  async user(userId: string): Promise<UserRecord | undefined> {
    const { rows } = await this.pool.query<UserRow>(`SELECT * FROM ${this.schema}.users WHERE user_id = $1`, [
      userId,
    ]);
    return rows[0] && toUser(rows[0]);
  }

  /** id -> name of the given organisations, in the order given; unknown ones are left out. */
  async organisations(ids: readonly string[]): Promise<{ id: string; name: string }[]> {
    const { rows } = await this.pool.query<{ organisation_id: string; name: string }>(
      `SELECT organisation_id, name FROM ${this.schema}.organisations WHERE organisation_id = ANY($1)`,
      [ids],
    );
    const names = new Map(rows.map((r) => [r.organisation_id, r.name]));
    return ids.flatMap((id) => (names.has(id) ? [{ id, name: names.get(id)! }] : []));
  }

  async scopeDescriptions(names: readonly string[]): Promise<Map<string, string>> {
    const { rows } = await this.pool.query<{ name: string; description: string }>(
      `SELECT name, description FROM ${this.schema}.scopes WHERE name = ANY($1)`,
      [names],
    );
    return new Map(rows.map((r) => [r.name, r.description]));
  }

  async scopeNames(): Promise<string[]> {
    const { rows } = await this.pool.query<{ name: string }>(
      `SELECT name FROM ${this.schema}.scopes ORDER BY name`,
    );
    return rows.map((r) => r.name);
  }
}
