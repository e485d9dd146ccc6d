import type { ReadModelMigrations } from '@grantline/event-store';
import { combine, onEvents } from '@grantline/message-bus';
import type pg from 'pg';
import { usersChannel } from './user-directory.ts';

/**
 * The registry's users, organisations and scope catalogue, as the other services read them. No
 * password hash: only the authorization service keeps those (its own credentials projection).
 */
export const peopleTables: ReadModelMigrations = {
  model: 'people',
  migrations: [
    {
      version: 1,
      name: 'users, organisations, scopes',
      sql: `
        CREATE TABLE IF NOT EXISTS {schema}.users (
          user_id text PRIMARY KEY,
          username text NOT NULL UNIQUE,
          status text NOT NULL,
          organisations text[] NOT NULL,
          credentials_changed_at timestamptz
        );
        CREATE TABLE IF NOT EXISTS {schema}.organisations (organisation_id text PRIMARY KEY, name text NOT NULL);
        CREATE TABLE IF NOT EXISTS {schema}.scopes (name text PRIMARY KEY, description text NOT NULL)`,
    },
    {
      version: 2,
      // older versions stored every user's password hash in every service; the authorization
      // service's credentials migration carries them over first
      name: 'no password hashes',
      sql: 'ALTER TABLE {schema}.users DROP COLUMN IF EXISTS password_hash',
    },
  ],
};

const USER_EVENTS = [
  'UserCreated',
  'UserAddedToOrganisation',
  'UserRemovedFromOrganisation',
  'UserDisabled',
  'UserPasswordChanged',
] as const;

/** After each user change, in its transaction: delivered at commit to every instance's UserDirectory. */
const userChanges = (schema: string) =>
  onEvents(USER_EVENTS, (event, tx) =>
    tx.query('SELECT pg_notify($1, $2)', [usersChannel(schema), event.data.userId]),
  );

export const peopleProjection = (schema: string) => combine(peopleRows(schema), userChanges(schema));

const peopleRows = (schema: string) =>
  onEvents([...USER_EVENTS, 'OrganisationCreated', 'ScopeDefined'], async (event, tx) => {
    const time = new Date(event.time);
    switch (event.type) {
      case 'UserCreated':
        return tx.query(
          `INSERT INTO ${schema}.users (user_id, username, status, organisations)
             VALUES ($1, $2, 'active', $3) ON CONFLICT (user_id) DO NOTHING`,
          [event.data.userId, event.data.username, event.data.organisations],
        );
      case 'UserAddedToOrganisation':
        return tx.query(
          `UPDATE ${schema}.users SET organisations = array_append(array_remove(organisations, $2), $2)
             WHERE user_id = $1`,
          [event.data.userId, event.data.organisationId],
        );
      case 'UserRemovedFromOrganisation':
        return tx.query(
          `UPDATE ${schema}.users SET organisations = array_remove(organisations, $2) WHERE user_id = $1`,
          [event.data.userId, event.data.organisationId],
        );
      case 'UserDisabled':
        return tx.query(
          `UPDATE ${schema}.users SET status = 'disabled', credentials_changed_at = $2 WHERE user_id = $1`,
          [event.data.userId, time],
        );
      case 'UserPasswordChanged':
        return tx.query(`UPDATE ${schema}.users SET credentials_changed_at = $2 WHERE user_id = $1`, [
          event.data.userId,
          time,
        ]);
      case 'OrganisationCreated':
        return tx.query(
          `INSERT INTO ${schema}.organisations (organisation_id, name) VALUES ($1, $2)
             ON CONFLICT (organisation_id) DO UPDATE SET name = $2`,
          [event.data.organisationId, event.data.name],
        );
      case 'ScopeDefined':
        return tx.query(
          `INSERT INTO ${schema}.scopes (name, description) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET description = $2`,
          [event.data.name, event.data.description],
        );
      default: {
        const exhaustive: never = event;
        return exhaustive;
      }
    }
  });

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
