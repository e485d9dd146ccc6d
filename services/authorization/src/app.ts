import { TOPICS } from '@grantline/events';
import { createRuntime, exitOnCrash, startService } from '@grantline/service-kit';
import { createLogger } from '@grantline/telemetry';
import type { AuthorizationConfig } from './config.ts';
import { metadataEndpoint, type ServerUrls } from './endpoints/metadata.ts';

/** The authorization service. So far: the issuer's RFC 8414 metadata, with the scope catalogue. */
export const startAuthorization = async (
  config: AuthorizationConfig,
  options: { onCrash?: (e: Error) => void } = {},
) => {
  const logger = createLogger({ name: 'authorization', level: config.LOG_LEVEL });
  const runtime = await createRuntime({
    service: 'authorization',
    schema: 'authz',
    databaseUrl: config.DATABASE_URL,
    kafkaBrokers: config.KAFKA_BROKERS,
    topicPrefix: config.KAFKA_TOPIC_PREFIX,
    logger,
  });
  const { pool, schema } = runtime;
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${schema}.scopes (name text PRIMARY KEY, description text NOT NULL)`,
  );
  await runtime.project(
    'authorization-scopes',
    [TOPICS.registry],
    async (event, tx) => {
      if (event.type !== 'ScopeDefined') return;
      const { name, description } = event.data as { name: string; description: string };
      await tx.query(
        `INSERT INTO ${schema}.scopes (name, description) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET description = $2`,
        [name, description],
      );
    },
    options.onCrash ?? exitOnCrash(logger),
  );
  let urls: ServerUrls | undefined;
  const service = await startService({
    name: 'authorization',
    port: config.PORT,
    host: config.HOST,
    logLevel: config.LOG_LEVEL,
    otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
    readiness: runtime.readiness,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    onShutdown: runtime.shutdown,
    routes: (app) => {
      app.get(
        '/.well-known/oauth-authorization-server',
        metadataEndpoint(
          () => urls!,
          async () =>
            (await pool.query<{ name: string }>(`SELECT name FROM ${schema}.scopes ORDER BY name`)).rows.map(
              (r) => r.name,
            ),
        ),
      );
    },
  });
  const issuer = config.GRANTLINE_ISSUER ?? service.url;
  urls = {
    issuer,
    tokenEndpoint: config.GRANTLINE_TOKEN_ENDPOINT ?? `${issuer}/oauth2/token`,
    jwksUri: config.GRANTLINE_JWKS_URI ?? `${issuer}/oauth2/jwks`,
    registrationEndpoint: config.GRANTLINE_REGISTRATION_ENDPOINT ?? `${issuer}/oauth2/register`,
  };
  return { ...service, runtime, issuer };
};
