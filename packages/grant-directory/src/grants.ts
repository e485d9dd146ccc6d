import type { ReadModelMigrations } from '@grantline/event-store';
import { onEvents } from '@grantline/message-bus';
import type pg from 'pg';

/** Which active grants a user holds with a client: the consent service's and the token service's view. */
export const grantsTables: ReadModelMigrations = {
  model: 'grants',
  migrations: [
    {
      version: 1,
      name: 'grants',
      sql: `
        CREATE TABLE IF NOT EXISTS {schema}.grants (
          grant_id text PRIMARY KEY,
          subject text NOT NULL,
          client_id text NOT NULL,
          scopes text[] NOT NULL,
          organisations text[] NOT NULL,
          status text NOT NULL,
          version int NOT NULL,
          created_at timestamptz NOT NULL,
          updated_at timestamptz NOT NULL
        );
        CREATE INDEX IF NOT EXISTS grants_by_subject_client ON {schema}.grants (subject, client_id, created_at)`,
    },
  ],
};

/**
 * Applies grant events in stream order; an event older than the row (a redelivery after a newer
 * one) is skipped by comparing stream versions, so revocation stays terminal.
 */
export const grantsProjection = (schema: string) => {
  const t = `${schema}.grants`;
  const guarded = (set: string) =>
    `UPDATE ${t} SET ${set}, version = $2, updated_at = $3 WHERE grant_id = $1 AND version < $2 AND status = 'active'`;
  return onEvents(
    [
      'GrantCreated',
      'GrantMerged',
      'GrantReplaced',
      'OrganisationConnected',
      'OrganisationDisconnected',
      'GrantRevoked',
    ],
    async (event, tx) => {
      const { grantId } = event.data;
      const v = event.streamVersion;
      const at = new Date(event.time);
      switch (event.type) {
        case 'GrantCreated': {
          const { subject, clientId, scopes, organisations } = event.data;
          return tx.query(
            `INSERT INTO ${t} (grant_id, subject, client_id, scopes, organisations, status, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $7) ON CONFLICT (grant_id) DO NOTHING`,
            [grantId, subject, clientId, scopes, organisations, v, at],
          );
        }
        case 'GrantMerged':
        case 'GrantReplaced':
          return tx.query(guarded('scopes = $4, organisations = $5'), [
            grantId,
            v,
            at,
            event.data.scopes,
            event.data.organisations,
          ]);
        case 'OrganisationConnected':
          return tx.query(guarded('organisations = array_append(array_remove(organisations, $4), $4)'), [
            grantId,
            v,
            at,
            event.data.organisationId,
          ]);
        case 'OrganisationDisconnected':
          return tx.query(guarded('organisations = array_remove(organisations, $4)'), [
            grantId,
            v,
            at,
            event.data.organisationId,
          ]);
        case 'GrantRevoked':
          return tx.query(
            `UPDATE ${t} SET status = 'revoked', version = GREATEST(version, $2), updated_at = $3 WHERE grant_id = $1`,
            [grantId, v, at],
          );
        default: {
          const exhaustive: never = event;
          return exhaustive;
        }
      }
    },
  );
};

/**
 * The user's active grants holding the organisation, read in the caller's transaction (a reactor's:
 * on the embedded database a read outside it would wait for it to end).
 */
export const activeGrantsWithOrganisation = async (
  tx: Pick<pg.Pool, 'query'>,
  schema: string,
  subject: string,
  organisationId: string,
): Promise<string[]> => {
  const { rows } = await tx.query<{ grant_id: string }>(
    `SELECT grant_id FROM ${schema}.grants WHERE subject = $1 AND status = 'active' AND $2 = ANY(organisations)`,
    [subject, organisationId],
  );
  return rows.map((r) => r.grant_id);
};

export interface GrantSummary {
  grantId: string;
  scopes: string[];
  organisations: string[];
}

export interface GrantRecord extends GrantSummary {
  status: 'active' | 'revoked';
  subject: string;
  clientId: string;
}

export class GrantQueries {
  constructor(
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  /** The user's most recent active grant with this client, if any. */
  async latestActive(subject: string, clientId: string): Promise<GrantSummary | undefined> {
    const { rows } = await this.pool.query<{ grant_id: string; scopes: string[]; organisations: string[] }>(
      `SELECT grant_id, scopes, organisations FROM ${this.schema}.grants
       WHERE subject = $1 AND client_id = $2 AND status = 'active' ORDER BY created_at DESC LIMIT 1`,
      [subject, clientId],
    );
    const r = rows[0];
    return r && { grantId: r.grant_id, scopes: r.scopes, organisations: r.organisations };
  }

  /** One grant as last projected; undefined when the projection has not seen it (yet). */
  async get(grantId: string): Promise<GrantRecord | undefined> {
    const { rows } = await this.pool.query<{
      grant_id: string;
      subject: string;
      client_id: string;
      scopes: string[];
      organisations: string[];
      status: GrantRecord['status'];
    }>(`SELECT * FROM ${this.schema}.grants WHERE grant_id = $1`, [grantId]);
    const r = rows[0];
    return (
      r && {
        grantId: r.grant_id,
        subject: r.subject,
        clientId: r.client_id,
        scopes: r.scopes,
        organisations: r.organisations,
        status: r.status,
      }
    );
  }
}
