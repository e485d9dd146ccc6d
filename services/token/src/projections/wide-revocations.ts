import type { ReadModelMigrations } from '@grantline/event-store';
import { onEvents } from '@grantline/message-bus';

/**
 * The admin's revocations wider than one grant (`SubjectRevoked`, `ClientRevoked`, grants topic),
 * as the token service keeps them: the latest revocation time per subject and per client. Each
 * grant revoked with them also gets its own `GrantRevoked`; this table covers what that cannot:
 * a grant the consent service had not projected yet when the admin revoked, and a code issued
 * before the revocation and redeemed after it. A family or code from before the time is refused
 * (read with the grant and the user: `grants/standing.ts`).
 */
export const wideRevocationsTables: ReadModelMigrations = {
  model: 'wide-revocations',
  migrations: [
    {
      version: 1,
      name: 'wide revocations',
      sql: `
        CREATE TABLE IF NOT EXISTS {schema}.wide_revocations (
          kind text NOT NULL,
          id text NOT NULL,
          revoked_at timestamptz NOT NULL,
          PRIMARY KEY (kind, id)
        )`,
    },
  ],
};

/** Keeps the latest time per subject or client (any delivery order, any number of redeliveries). */
export const wideRevocationsProjection = (schema: string) =>
  onEvents(['SubjectRevoked', 'ClientRevoked'], async (event, tx) => {
    const key =
      event.type === 'SubjectRevoked'
        ? { kind: 'subject', id: event.data.subject }
        : { kind: 'client', id: event.data.clientId };
    await tx.query(
      `INSERT INTO ${schema}.wide_revocations (kind, id, revoked_at) VALUES ($1, $2, $3)
       ON CONFLICT (kind, id) DO UPDATE SET revoked_at = GREATEST(${schema}.wide_revocations.revoked_at, EXCLUDED.revoked_at)`,
      [key.kind, key.id, new Date(event.time)],
    );
  });
