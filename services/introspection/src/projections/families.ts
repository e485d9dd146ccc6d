import type { Queryable, ReadModelMigrations } from '@grantline/event-store';
import { type ConsumedEvent, type Projection, typedEvent } from '@grantline/message-bus';
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

/** a JSON array of strings as text[], its order kept */
const textArray = (column: string) =>
  `ARRAY(SELECT e FROM jsonb_array_elements_text(${column}) WITH ORDINALITY AS t(e, i) ORDER BY i)`;

type FamilyRow = {
  familyId: string;
  /** what the family's first event says, when the run holds it */
  issued?: Pick<
    Family,
    'clientId' | 'grantId' | 'subject' | 'scopes' | 'organisations' | 'resources' | 'issuedAt'
  >;
  tokenId: string;
  secretDigest: string;
  version: number;
  usedAt: Date;
};

/**
 * Idempotent by itself (`applyRun`): a family's row moves only to a later version (a redelivered or
 * older event changes nothing), so a run of events is one statement in autocommit, with no
 * processed-events row. The run is folded first, one row per family: the families it begins are
 * inserted with their latest token (or, met again, moved on to it), the others moved on to their
 * latest rotation. Like the per-event projection before it, it relies on a family's events coming in
 * order (one stream, one partition: the key is the stream): a rotation whose family has no row yet,
 * in a run without the family's first event, moves nothing.
 */
export const familiesProjection = (schema: string): Projection => {
  const t = `${schema}.refresh_families`;
  const types = ['RefreshTokenIssued', 'RefreshTokenRotated'] as const;
  const applyRun = async (events: readonly ConsumedEvent[], db: Queryable) => {
    const rows = new Map<string, FamilyRow>();
    for (const event of events) {
      const typed = typedEvent(event, types);
      if (!typed) continue;
      const known = rows.get(typed.data.familyId);
      const at = new Date(typed.time);
      if (typed.type === 'RefreshTokenIssued') {
        const d = typed.data;
        const issued = { ...d, issuedAt: at };
        // a rotation met before its family's first event (a redelivery) is later than it
        if (known) known.issued = issued;
        else
          rows.set(d.familyId, {
            familyId: d.familyId,
            issued,
            tokenId: d.tokenId,
            secretDigest: d.secretDigest,
            version: typed.streamVersion,
            usedAt: at,
          });
      } else if (!known || known.version < typed.streamVersion) {
        const d = typed.data;
        rows.set(d.familyId, {
          familyId: d.familyId,
          ...(known?.issued && { issued: known.issued }),
          tokenId: d.nextTokenId,
          secretDigest: d.secretDigest,
          version: typed.streamVersion,
          usedAt: at,
        });
      }
    }
    if (rows.size === 0) return;
    // in family order within each part (the families the run begins, those it moves on), which
    // Postgres writes one after the other: the lock order of one run
    const sorted = [...rows.values()].sort((a, b) => (a.familyId < b.familyId ? -1 : 1));
    const begun = sorted.filter((r) => r.issued);
    const moved = sorted.filter((r) => !r.issued);
    await db.query(
      `WITH begun AS (
         INSERT INTO ${t} AS f (family_id, client_id, grant_id, subject, scopes, organisations, resources,
           token_id, secret_digest, version, issued_at, used_at)
         SELECT family_id, client_id, grant_id, subject, ${textArray('scopes')}, ${textArray('organisations')}, ${textArray('resources')},
           token_id, secret_digest, version, issued_at, used_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::jsonb[],
           $8::text[], $9::text[], $10::int[], $11::timestamptz[], $12::timestamptz[])
           AS u(family_id, client_id, grant_id, subject, scopes, organisations, resources, token_id, secret_digest, version, issued_at, used_at)
         ON CONFLICT (family_id) DO UPDATE SET token_id = excluded.token_id, secret_digest = excluded.secret_digest,
           version = excluded.version, used_at = excluded.used_at
         WHERE f.version < excluded.version)
       UPDATE ${t} AS f SET token_id = u.token_id, secret_digest = u.secret_digest, version = u.version, used_at = u.used_at
       FROM unnest($13::text[], $14::text[], $15::text[], $16::int[], $17::timestamptz[]) AS u(family_id, token_id, secret_digest, version, used_at)
       WHERE f.family_id = u.family_id AND f.version < u.version`,
      [
        begun.map((r) => r.familyId),
        begun.map((r) => r.issued!.clientId),
        begun.map((r) => r.issued!.grantId),
        begun.map((r) => r.issued!.subject),
        begun.map((r) => JSON.stringify(r.issued!.scopes)),
        begun.map((r) => JSON.stringify(r.issued!.organisations)),
        begun.map((r) => JSON.stringify(r.issued!.resources)),
        begun.map((r) => r.tokenId),
        begun.map((r) => r.secretDigest),
        begun.map((r) => r.version),
        begun.map((r) => r.issued!.issuedAt),
        begun.map((r) => r.usedAt),
        moved.map((r) => r.familyId),
        moved.map((r) => r.tokenId),
        moved.map((r) => r.secretDigest),
        moved.map((r) => r.version),
        moved.map((r) => r.usedAt),
      ],
    );
  };
  return { types, apply: (event, tx) => applyRun([event], tx), applyRun };
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
