import type { ReadModelMigrations } from '@grantline/event-store';
import { onEvents } from '@grantline/message-bus';

const SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post']);

/** The registry's clients as the other services read them: one row per client. Rebuildable from the topic. */
export const clientsTables: ReadModelMigrations = {
  model: 'clients',
  migrations: [
    {
      version: 1,
      name: 'clients',
      sql: `
        CREATE TABLE IF NOT EXISTS {schema}.clients (
          client_id text PRIMARY KEY,
          status text NOT NULL,
          metadata jsonb NOT NULL,
          secret_digest text,
          updated_at timestamptz NOT NULL DEFAULT now()
        )`,
    },
    {
      version: 2,
      name: 'resource servers',
      // the audiences an administrator made the client a resource server for
      sql: `ALTER TABLE {schema}.clients ADD COLUMN served_resources jsonb NOT NULL DEFAULT '[]'`,
    },
  ],
};

/** The projection's change notifications: the payload is the changed client's id. */
export const clientsChannel = (schema: string) => `${schema}_clients`;

/** Applied inside the consumer's transaction; each change notifies `clientsChannel` at commit. */
export const clientsProjection = (schema: string) => {
  const t = `${schema}.clients`;
  return onEvents(
    [
      'ClientRegistered',
      'ClientMetadataUpdated',
      'ClientSecretRotated',
      'ClientResourceServerSet',
      'ClientDisabled',
      'ClientDeleted',
    ],
    async (event, tx) => {
      switch (event.type) {
        case 'ClientRegistered':
          await tx.query(
            `INSERT INTO ${t} (client_id, status, metadata, secret_digest) VALUES ($1, 'active', $2, $3)
             ON CONFLICT (client_id) DO NOTHING`,
            [event.data.clientId, JSON.stringify(event.data.metadata), event.data.secretDigest ?? null],
          );
          break;
        // A client moved off the secret methods loses its secret: moved back, it authenticates only with
        // the new one the registry issues (a ClientSecretRotated right after this event), never the old.
        case 'ClientMetadataUpdated':
          await tx.query(
            `UPDATE ${t} SET metadata = $2, updated_at = now(),
               secret_digest = CASE WHEN $3 THEN secret_digest END
             WHERE client_id = $1`,
            [
              event.data.clientId,
              JSON.stringify(event.data.metadata),
              SECRET_METHODS.has(event.data.metadata.tokenEndpointAuthMethod),
            ],
          );
          break;
        case 'ClientSecretRotated':
          await tx.query(`UPDATE ${t} SET secret_digest = $2, updated_at = now() WHERE client_id = $1`, [
            event.data.clientId,
            event.data.secretDigest,
          ]);
          break;
        case 'ClientResourceServerSet':
          await tx.query(`UPDATE ${t} SET served_resources = $2, updated_at = now() WHERE client_id = $1`, [
            event.data.clientId,
            JSON.stringify(event.data.resources),
          ]);
          break;
        case 'ClientDisabled':
          await tx.query(`UPDATE ${t} SET status = 'disabled', updated_at = now() WHERE client_id = $1`, [
            event.data.clientId,
          ]);
          break;
        case 'ClientDeleted':
          await tx.query(`UPDATE ${t} SET status = 'deleted', updated_at = now() WHERE client_id = $1`, [
            event.data.clientId,
          ]);
          break;
        default: {
          const exhaustive: never = event;
          return exhaustive;
        }
      }
      // delivered at commit to every instance's ClientDirectory, which forgets its cached copy
      await tx.query('SELECT pg_notify($1, $2)', [clientsChannel(schema), event.data.clientId]);
    },
  );
};
