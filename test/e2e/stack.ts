import { randomBytes } from 'node:crypto';
import { startAuthorization } from '@grantline/authorization';
import type { Clock } from '@grantline/clock';
import { startConsent } from '@grantline/consent';
import { startIntrospection } from '@grantline/introspection';
import { generateKeyMaterial, type ServiceName, serviceKeyEnv } from '@grantline/keys';
import { startRegistry } from '@grantline/registry';
import { startGateway } from '@grantline/server';
import { loadConfig, loadDistributedConfig, runtimeFromConfig } from '@grantline/service-kit';
import type { DestinationStream } from '@grantline/telemetry';
import { createTestDatabase, freePort, type Infrastructure, uniqueName } from '@grantline/testing';
import { startToken } from '@grantline/token';
import { authorizationConfigSchema } from '../../services/authorization/src/config.ts';
import { consentConfigSchema } from '../../services/consent/src/config.ts';
import { introspectionConfigSchema } from '../../services/introspection/src/config.ts';
import { registryConfigSchema } from '../../services/registry/src/config.ts';
import { tokenConfigSchema } from '../../services/token/src/config.ts';
import { registryAdmin } from './registry-admin.ts';

export const ADMIN_TOKEN = randomBytes(32).toString('base64url');
/** This test file's keys, by purpose (packages/keys KEY_PURPOSES); each service gets only its own. */
export const KEYS = generateKeyMaterial();

/**
 * scrypt cost of password hashes in tests: 2^14 instead of OWASP's 2^17 (the production default), a
 * documented test-only setting (PASSWORD_SCRYPT_N): each hash costs ~0.07 s of CPU instead of
 * ~0.6 s. `PASSWORD_SCRYPT_N=131072 pnpm test` runs the tests at the production cost.
 */
export const TEST_PASSWORD_SCRYPT_N = process.env.PASSWORD_SCRYPT_N ?? '16384';

/**
 * Every service built so far, each with its own port, schema and consumers, sharing one test
 * database, a unique Kafka topic prefix and Redis, behind the development gateway: one origin, as
 * `pnpm start:services` runs them. A black box from here on: tests speak HTTP.
 */
export const startStack = async (
  infra: Infrastructure,
  env: Record<string, string> = {},
  options: {
    logDestination?: DestinationStream;
    /** variables for one service only, over `env` */
    only?: Partial<Record<ServiceName, Record<string, string>>>;
    /** every service's clock (default: the system clock): a test moves it past a lifetime instead of sleeping */
    clock?: Clock;
  } = {},
) => {
  const db = await createTestDatabase(infra);
  const topicPrefix = `${uniqueName('e2e')}.`;
  // the gateway's port is known before the services start: every public URL they are given is on it
  const gatewayPort = await freePort();
  const issuer = `http://127.0.0.1:${gatewayPort}`;
  const [registryUrl, tokenUrl, consentUrl] = [issuer, issuer, issuer];
  const common = {
    DATABASE_URL: db.url,
    // five services and extra instances per test file, three files at once, on a server that takes
    // 100 connections (Postgres's default): a few each is plenty for tests
    DATABASE_POOL_SIZE: '5',
    KAFKA_BROKERS: infra.kafkaBrokers.join(','),
    REDIS_URL: infra.redisUrl,
    KAFKA_TOPIC_PREFIX: topicPrefix,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PORT: '0',
    MANAGEMENT_PORT: '0',
    // the gateway, on loopback, says who the client is (X-Forwarded-For); the login limiter counts by it
    GRANTLINE_TRUSTED_PROXIES: 'loopback',
    GRANTLINE_ADMIN_TOKEN: ADMIN_TOKEN,
    GRANTLINE_ISSUER: issuer,
    PASSWORD_SCRYPT_N: TEST_PASSWORD_SCRYPT_N,
    GRANTLINE_TOKEN_ENDPOINT: `${tokenUrl}/oauth2/token`,
    ...env,
  };
  const { logDestination, only = {}, clock } = options;
  const keyEnv = serviceKeyEnv(KEYS);
  /** what each service is configured with: its own keys only (finding 5) */
  const serviceEnv: Record<ServiceName, Record<string, string>> = {
    registry: { ...keyEnv.registry, ...common, PUBLIC_URL: registryUrl, ...only.registry },
    token: {
      ...keyEnv.token,
      ...common,
      GRANTLINE_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64url'),
      KEY_ROTATION_LEAD_SECONDS: '1',
      ...env,
      ...only.token,
    },
    authorization: {
      ...keyEnv.authorization,
      ...common,
      GRANTLINE_JWKS_URI: `${tokenUrl}/oauth2/jwks`,
      GRANTLINE_REGISTRATION_ENDPOINT: `${registryUrl}/oauth2/register`,
      GRANTLINE_CONSENT_URL: `${consentUrl}/consent`,
      GRANTLINE_GRANTS_ENDPOINT: `${consentUrl}/oauth2/grants`,
      ...only.authorization,
    },
    consent: {
      ...keyEnv.consent,
      ...common,
      GRANTLINE_AUTHORIZATION_URL: issuer,
      ...only.consent,
    },
    introspection: {
      ...keyEnv.introspection,
      ...common,
      GRANTLINE_JWKS_URI: `${tokenUrl}/oauth2/jwks`,
      GRANTLINE_INTROSPECTION_ENDPOINT: `${issuer}/oauth2/introspect`,
      ...only.introspection,
    },
  };
  const onCrash = (e: Error) => {
    throw e;
  };
  /** the distributed runtime each service's environment names (its own Postgres pool, Kafka client, Redis) */
  const runtimeOf = (env: Record<string, string>) => runtimeFromConfig(loadDistributedConfig(env));
  const registry = await startRegistry(
    loadConfig(registryConfigSchema, serviceEnv.registry),
    runtimeOf(serviceEnv.registry),
    { logDestination, clock },
  );
  const token = await startToken(
    loadConfig(tokenConfigSchema, serviceEnv.token),
    runtimeOf(serviceEnv.token),
    { onCrash, logDestination, clock },
  );
  const extraTokens: Awaited<ReturnType<typeof startToken>>[] = [];
  const authorization = await startAuthorization(
    loadConfig(authorizationConfigSchema, serviceEnv.authorization),
    runtimeOf(serviceEnv.authorization),
    { onCrash, logDestination, clock },
  );
  const extraAuthorizations: Awaited<ReturnType<typeof startAuthorization>>[] = [];
  const consent = await startConsent(
    loadConfig(consentConfigSchema, serviceEnv.consent),
    runtimeOf(serviceEnv.consent),
    { onCrash, logDestination, clock },
  );
  const introspection = await startIntrospection(
    loadConfig(introspectionConfigSchema, serviceEnv.introspection),
    runtimeOf(serviceEnv.introspection),
    { onCrash, logDestination, clock },
  );
  const gateway = await startGateway({
    port: gatewayPort,
    host: '127.0.0.1',
    targets: {
      authorization: authorization.url,
      registry: registry.url,
      token: token.url,
      consent: consent.url,
      introspection: introspection.url,
    },
  });
  const registryApi = registryAdmin({
    issuer,
    registryUrl,
    registryManagementUrl: registry.managementUrl,
    adminToken: ADMIN_TOKEN,
    pool: db.pool,
  });
  return {
    db,
    topicPrefix,
    issuer,
    registryUrl,
    /** the registry's management listener: `/admin`, `/metrics`, detailed `/readyz` */
    registryManagementUrl: registry.managementUrl,
    tokenUrl,
    /** the token service's management listener (`/admin/keys/rotate`) */
    tokenManagementUrl: token.managementUrl,
    consentUrl,
    /** the consent service's management listener (`/admin/revocations`) */
    consentManagementUrl: consent.managementUrl,
    /**
     * Each service's own public listener, behind the gateway: for a test about one listener (what
     * it serves, its /readyz), not for flows, which go through the one origin.
     */
    directUrls: {
      authorization: authorization.url,
      registry: registry.url,
      token: token.url,
      consent: consent.url,
      introspection: introspection.url,
    } satisfies Record<ServiceName, string>,
    /** the introspection service's management listener (detailed `/readyz`: the revocation cache) */
    introspectionManagementUrl: introspection.managementUrl,
    introspection,
    token,
    /** each service's environment: its own keys only (finding 5) */
    serviceEnv,
    /** the token service's environment, for a test that runs another instance as a process of its own */
    tokenEnv: serviceEnv.token,
    ...registryApi,
    /** another token service instance sharing the database, Kafka topics and Redis: returns its URL */
    addTokenInstance: async () => {
      const another = await startToken(
        loadConfig(tokenConfigSchema, { ...serviceEnv.token, PORT: '0' }),
        runtimeOf({ ...serviceEnv.token, PORT: '0' }),
        {
          onCrash,
          logDestination,
        },
      );
      extraTokens.push(another);
      return another.url;
    },
    /** another authorization service instance (same issuer, database, topics and Redis) with `extra` settings: its URLs */
    addAuthorizationInstance: async (extra: Record<string, string> = {}) => {
      const another = await startAuthorization(
        loadConfig(authorizationConfigSchema, { ...serviceEnv.authorization, ...extra, PORT: '0' }),
        runtimeOf(serviceEnv.authorization),
        { onCrash, logDestination, clock },
      );
      extraAuthorizations.push(another);
      return { url: another.url, managementUrl: another.managementUrl };
    },
    stop: async () => {
      for (const t of extraTokens) await t.stop();
      for (const a of extraAuthorizations) await a.stop();
      await gateway.stop();
      await introspection.stop();
      await consent.stop();
      await authorization.stop();
      await token.stop();
      await registry.stop();
      await db.drop();
    },
  };
};

export type Stack = Awaited<ReturnType<typeof startStack>>;

export const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** A form POST to the token endpoint; returns status, headers and parsed JSON body. */
export const tokenRequest = async (
  stack: Stack,
  form: Record<string, string> | string,
  headers: Record<string, string> = {},
) => {
  const res = await fetch(`${stack.tokenUrl}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: typeof form === 'string' ? form : new URLSearchParams(form).toString(),
  });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    body = { raw: text };
  }
  return { status: res.status, headers: res.headers, body };
};
