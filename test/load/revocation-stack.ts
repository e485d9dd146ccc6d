import { databaseUrlFor, freePort, freePorts } from '@grantline/testing';
import pg from 'pg';
import { registerResourceServer } from '../../examples/resource-server/register.ts';
import { createTenant, type Tenant } from '../e2e/flow.ts';
import { registryAdmin } from '../e2e/registry-admin.ts';
import type { Stack } from '../e2e/stack.ts';
import type { childProcesses } from './processes.ts';

/**
 * What `bench:revocation` runs against: the distributed services (`pnpm start:services`, a process
 * per service on Postgres, Kafka and Redis, behind the development gateway) and the example invoices
 * API (`pnpm example:resource-server`, its own process, subscribed to `grantline.revocations.v1` on
 * Kafka); a user in `organisations` organisations, an app whose tokens are for the invoices API, a
 * client_credentials client for the background load, and the API's resource-server client.
 */
export interface RevocationStack {
  issuer: string;
  /** the token service's and the introspection service's own ports: the benchmark measures the services */
  tokenUrl: string;
  introspectionUrl: string;
  /** the example invoices API (its URL is its audience) */
  resourceServerUrl: string;
  resourceServer: { clientId: string; clientSecret: string };
  kafka: { brokers: string[]; topicPrefix: string };
  stack: Stack;
  tenant: Tenant;
  background: { clientId: string; clientSecret: string };
  pool: pg.Pool;
}

const adminToken = 'bench-admin-token-0123456789abcdefghijklmnop';

export const basicAuth = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

export const startRevocationStack = async (
  infra: { databaseUrl: string; kafkaBrokers: string[]; redisUrl: string },
  spawnTs: ReturnType<typeof childProcesses>['spawnTs'],
  organisationCount: number,
  database: string,
): Promise<RevocationStack> => {
  // the gateway and the five services behind it, then the management gateway and their management ports
  const base = await freePorts(12);
  const managementBase = base + 6;
  const topicPrefix = `${database}.`;
  await spawnTs(
    'scripts/start-services.ts',
    {
      DATABASE_URL: infra.databaseUrl,
      KAFKA_BROKERS: infra.kafkaBrokers.join(','),
      REDIS_URL: infra.redisUrl,
      GRANTLINE_BASE_PORT: String(base),
      GRANTLINE_MANAGEMENT_BASE_PORT: String(managementBase),
      GRANTLINE_DATABASE: database,
      KAFKA_TOPIC_PREFIX: topicPrefix,
      GRANTLINE_ADMIN_TOKEN: adminToken,
      GRANTLINE_KEY_ENCRYPTION_KEY: 'q'.repeat(43),
      LOG_LEVEL: 'warn',
    },
    'Grantline is running',
  );
  const issuer = `http://127.0.0.1:${base}`;
  const pool = new pg.Pool({ connectionString: databaseUrlFor(infra.databaseUrl, database) });
  // the fields of an in-process Stack that the scripted flow in test/e2e/flow.ts uses (as bench:flow)
  const stack = {
    issuer,
    registryUrl: issuer,
    tokenUrl: issuer,
    consentUrl: issuer,
    db: { pool },
    ...registryAdmin({
      issuer,
      registryUrl: issuer,
      registryManagementUrl: `http://127.0.0.1:${managementBase}`,
      adminToken,
      pool,
    }),
  } as unknown as Stack;

  // the invoices API's URL is its audience: known before it starts, so its client is registered first
  const resourceServerPort = await freePort();
  const resourceServerUrl = `http://127.0.0.1:${resourceServerPort}/`;
  const resourceServer = await registerResourceServer({
    registrationEndpoint: `${issuer}/oauth2/register`,
    managementUrl: `http://127.0.0.1:${managementBase}`,
    adminToken,
    resource: resourceServerUrl,
  });
  const tenant = await createWideTenant(stack, organisationCount, { resources: [resourceServerUrl] });
  const background = await stack.register({
    client_name: 'Background load',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'invoices.read',
    resources: [resourceServerUrl],
  });
  await spawnTs(
    'examples/resource-server/main.ts',
    {
      GRANTLINE_ISSUER: issuer,
      GRANTLINE_CLIENT_ID: resourceServer.clientId,
      GRANTLINE_CLIENT_SECRET: resourceServer.clientSecret,
      KAFKA_BROKERS: infra.kafkaBrokers.join(','),
      KAFKA_TOPIC_PREFIX: topicPrefix,
      HOST: '127.0.0.1',
      PORT: String(resourceServerPort),
    },
    'invoices API on',
  );
  return {
    issuer,
    tokenUrl: `http://127.0.0.1:${base + 3}/oauth2/token`,
    introspectionUrl: `http://127.0.0.1:${base + 5}/oauth2/introspect`,
    resourceServerUrl,
    resourceServer,
    kafka: { brokers: infra.kafkaBrokers, topicPrefix },
    stack,
    tenant,
    background: { clientId: background.client_id, clientSecret: background.client_secret! },
    pool,
  };
};

/**
 * createTenant with `count` organisations: a grant connected to all of them gives `count`
 * disconnections to measure (one organisation at a time, the last with the grant).
 */
const createWideTenant = (stack: Stack, count: number, client: Record<string, unknown>): Promise<Tenant> =>
  createTenant(stack, client, (tag) =>
    Array.from({ length: count }, (_, i) => `Organisation ${i + 1} ${tag}`),
  );
