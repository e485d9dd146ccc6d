import { systemClock } from '@grantline/clock';
import type { EventStore } from '@grantline/event-store';
import { TOPICS } from '@grantline/events';
import { seal } from '@grantline/keys';
import { handle, hashPassword, OWASP_SCRYPT_N, oauthErrorBoundary } from '@grantline/oauth';
import {
  listenOptions,
  type Runtime,
  type RuntimeFactory,
  type ServiceModule,
  type StartOptions,
  startService,
} from '@grantline/service-kit';
import { createLogger } from '@grantline/telemetry';
import express from 'express';
import type { RegistryConfig } from './config.ts';
import { streams } from './domain/directory.ts';
import { adminRouter } from './endpoints/admin.ts';
import { sha256 } from './endpoints/auth.ts';
import {
  deleteClientEndpoint,
  readClientEndpoint,
  updateClientEndpoint,
} from './endpoints/client-configuration.ts';
import type { RegistryDeps } from './endpoints/deps.ts';
import { registerEndpoint } from './endpoints/register.ts';

/**
 * The registry's store: an append returns once every service that projects the registry has applied
 * it, so a 201 from registration means the client works on every token instance, and a 204 from a
 * delete or disable means its credentials are refused everywhere (the Nimbus SDK's first request
 * right after registration, and a deleted client's next, both depend on it).
 */
const projectedBeforeAnswer = (runtime: Runtime, timeoutMs: number): EventStore => {
  const store = runtime.store;
  return {
    append: async (streamId, expected, events, options) => {
      const result = await store.append(streamId, expected, events, options);
      await runtime.awaitProjected(result.lastPosition, TOPICS.registry, timeoutMs);
      return result;
    },
    readStream: (streamId, options) => store.readStream(streamId, options),
    transaction: (work) => store.transaction(work),
  };
};

/** The registry service: clients (RFC 7591/7592), users, organisations, the scope catalogue. */
export const buildRegistry = async (
  config: RegistryConfig,
  runtimes: RuntimeFactory,
  options: StartOptions = {},
) => {
  const logger = createLogger({
    name: 'registry',
    level: config.LOG_LEVEL,
    destination: options.logDestination,
  });
  const clock = options.clock ?? systemClock;
  const runtime = await runtimes({ service: 'registry', logger, clock });
  if (config.PASSWORD_SCRYPT_N < OWASP_SCRYPT_N)
    logger.warn(
      { PASSWORD_SCRYPT_N: config.PASSWORD_SCRYPT_N },
      'password hashes below OWASP cost (2^17): for tests only',
    );
  const deps: RegistryDeps = {
    store: projectedBeforeAnswer(runtime, config.REGISTRY_WRITE_VISIBILITY_TIMEOUT_MS),
    adminTokenDigest: sha256(config.GRANTLINE_ADMIN_TOKEN),
    sealPassword: async (password) =>
      seal(
        config.GRANTLINE_CREDENTIALS_ENCRYPTION_KEY[0]!,
        await hashPassword(password, config.PASSWORD_SCRYPT_N),
      ),
    publicUrl: config.PUBLIC_URL ?? config.GRANTLINE_ISSUER,
    clock,
    definedScopes: async (names) => {
      const found = await Promise.all(
        names.map(async (n) =>
          (await runtime.store.readStream(streams.scope(n))).currentVersion > 0 ? n : undefined,
        ),
      );
      return found.filter((n): n is string => n !== undefined);
    },
  };
  const json = express.json({ limit: '64kb' });
  const service = {
    name: 'registry',
    logger,
    readiness: runtime.readiness,
    onShutdown: runtime.shutdown,
    routes: (app, log) => {
      app.post('/oauth2/register', json, handle(registerEndpoint(deps)));
      app.get('/oauth2/register/:client_id', handle(readClientEndpoint(deps)));
      app.put('/oauth2/register/:client_id', json, handle(updateClientEndpoint(deps)));
      app.delete('/oauth2/register/:client_id', handle(deleteClientEndpoint(deps)));
      app.use('/oauth2', oauthErrorBoundary(log));
    },
    managementRoutes: (app) => {
      app.use('/admin', adminRouter(deps));
    },
  } satisfies ServiceModule;
  return { ...service, runtime };
};

/** The registry on listeners of its own (the distributed mode). */
export const startRegistry = async (
  config: RegistryConfig,
  runtimes: RuntimeFactory,
  options: StartOptions = {},
) => {
  const { runtime, ...module } = await buildRegistry(config, runtimes, options);
  return { ...(await startService({ ...module, ...listenOptions(config) })), runtime };
};
