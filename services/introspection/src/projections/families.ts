import type { ReadModelMigrations } from '@grantline/event-store';
import { onEvents } from '@grantline/message-bus';
import type pg from 'pg';

/**
 * Refresh token families, as the token service's events describe them: who and what each was issued
 * for, and its current token (id and secret digest). Whether a family is revoked is a fact
 * (`family:<id>`), not a column here, so revocation stays terminal whatever the order of events.
 */
export const familiesTables: ReadModelMigrations = {
  model: 'refresh-families',
  migrations: [
    {
      version: 1,
      name: 'refresh token families',
      sql: `
  CREATE TABLE {schema}.refresh_families (
    family_id text PRIMARY KEY,
    client_id text NOT NULL,
    grant_id text NOT NULL,
    subject text NOT NULL,
    scopes text[] NOT NULL,
    organisations text[] NOT NULL,
    resources text[] NOT NULL,
    token_id text NOT NULL,
    secret_digest text NOT NULL,
    version int NOT NULL,
    issued_at timestamptz NOT NULL,
    used_at timestamptz NOT NULL
  )`,
    },
  ],
};

/** eventType -> reducer; a rotation older than the row (a redelivery) changes nothing. */
export const familiesProjection = (schema: string) => {
  const t = `${schema}.refresh_families`;
  return onEvents(['RefreshTokenIssued', 'RefreshTokenRotated'], async (event, tx) => {
    const at = new Date(event.time);
    switch (event.type) {
      case 'RefreshTokenIssued': {
        const d = event.data;
        return tx.query(
          `INSERT INTO ${t} (family_id, client_id, grant_id, subject, scopes, organisations, resources,
             token_id, secret_digest, version, issued_at, used_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT (family_id) DO NOTHING`,
          [
            d.familyId,
            d.clientId,
            d.grantId,
            d.subject,
            d.scopes,
            d.organisations,
            d.resources,
            d.tokenId,
            d.secretDigest,
            event.streamVersion,
            at,
          ],
        );
      }
      case 'RefreshTokenRotated': {
        const d = event.data;
        return tx.query(
          `UPDATE ${t} SET token_id = $2, secret_digest = $3, version = $4, used_at = $5
           WHERE family_id = $1 AND version < $4`,
          [d.familyId, d.nextTokenId, d.secretDigest, event.streamVersion, at],
        );
      }
      default:
        return event satisfies never;
    }
  });
};

export interface Family {
  familyId: string;
  clientId: string;
  grantId: string;
  subject: string;
  scopes: string[];
  organisations: string[];
  resources: string[];
  tokenId: string;
  secretDigest: string;
  issuedAt: Date;
  usedAt: Date;
}

export const findFamily = async (pool: pg.Pool, schema: string, familyId: string) => {
  const { rows } = await pool.query(`SELECT * FROM ${schema}.refresh_families WHERE family_id = $1`, [
    familyId,
  ]);
  const r = rows[0];
  if (!r) return undefined;
  return {
    familyId: r.family_id,
    clientId: r.client_id,
    grantId: r.grant_id,
    subject: r.subject,
    scopes: r.scopes,
    organisations: r.organisations,
    resources: r.resources,
    tokenId: r.token_id,
    secretDigest: r.secret_digest,
    issuedAt: r.issued_at,
    usedAt: r.used_at,
  } satisfies Family;
};
