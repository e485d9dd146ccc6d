import { systemClock } from '@grantline/clock';
import { migrateReadModels } from '@grantline/event-store';
import { TOPICS } from '@grantline/events';
import { clientAuthentication, oauthErrorBoundary } from '@grantline/oauth';
import {
  ClientDirectory,
  People,
  registryDirectoryProjection,
  registryDirectoryTables,
  UserDirectory,
} from '@grantline/registry-directory';
import {
  exitOnCrash,
  listenOptions,
  type RuntimeFactory,
  type ServiceModule,
  type StartOptions,
  startService,
} from '@grantline/service-kit';
import { createLogger } from '@grantline/telemetry';
import { createRemoteJWKSet } from 'jose';
import type { IntrospectionConfig } from './config.ts';
import { introspectEndpoint } from './endpoints/introspect.ts';
import { introspectionJwksEndpoint } from './endpoints/jwks.ts';
import { revocationStreamEndpoint } from './endpoints/revocation-stream.ts';
import { tokenInspector } from './inspector.ts';
import { FactSet } from './projections/fact-set.ts';
import { FactLog, factsProjection, factsTables } from './projections/facts.ts';
import { familiesProjection, familiesTables } from './projections/families.ts';
import { RevocationPublisher } from './publisher.ts';

/**
 * The introspection service: RFC 7662 introspection answered from its own projections, and the
 * revocation projector (grants and tokens topics -> facts -> deny-list, revocations topic, stream).
 */
export const buildIntrospection = async (
  config: IntrospectionConfig,
  runtimes: RuntimeFactory,
  options: StartOptions = {},
) => {
  const logger = createLogger({
    name: 'introspection',
    level: config.LOG_LEVEL,
    destination: options.logDestination,
  });
  const clock = options.clock ?? systemClock;
  const runtime = await runtimes({ service: 'introspection', logger, clock });
  const { pool, schema, kv, topicPrefix } = runtime;
  await migrateReadModels(pool, schema, [...registryDirectoryTables, factsTables, familiesTables]);
  const issuer = config.GRANTLINE_ISSUER.replace(/\/$/, '');
  const onCrash = options.onCrash ?? exitOnCrash(logger);

  const facts = new FactLog(pool, schema);
  const publisher = new RevocationPublisher({
    bus: runtime.bus,
    facts,
    cache: runtime.revocations,
    logger,
    clock,
    heartbeatMs: config.REVOCATION_HEARTBEAT_MS,
  });
  const factSet = new FactSet(pool, schema, facts);
  // bootstrapped before the projector starts and before ready; checks ask the table until it is live
  const unwatchFacts = await factSet.watch(logger);
  const clients = new ClientDirectory(pool, schema);
  const unwatchClients = clients.watch(logger);
  const users = new UserDirectory(new People(pool, schema), pool, schema);
  const unwatchUsers = users.watch(logger);
  await runtime.project(
    'introspection-directory',
    [TOPICS.registry],
    registryDirectoryProjection(schema),
    onCrash,
  );
  await runtime.project('introspection-families', [TOPICS.tokens], familiesProjection(schema), onCrash);
  const projectFacts = factsProjection(schema, {
    ttlSeconds: config.ACCESS_TOKEN_TTL_SECONDS + config.REVOCATION_CLOCK_SKEW_SECONDS,
    cache: runtime.revocations,
    cacheFailed: (error) => publisher.cacheFailed(error),
    recorded: (keys, revokedAtMs) => factSet.add(keys, revokedAtMs),
  });
  // Two consumers, as the facts are order-free: the grants topic's few events (disconnections) are
  // not fetched behind the tokens topic's one per token, whose consumer is paced (HIGH_VOLUME_PACE_MS).
  // The tokens topic keeps the group that read both before (its offsets: an upgrade does not replay
  // that long topic); the grants topic's new group replays its short history, which the facts'
  // idempotence absorbs. (Both still commit facts one transaction at a time: the numbering lock.)
  for (const [name, topic] of [
    ['introspection-grant-revocations', TOPICS.grants],
    ['introspection-revocations', TOPICS.tokens],
  ] as const)
    await runtime.project(name, [topic], projectFacts, onCrash, {
      // committed: on to the topic and the stream at once (the publisher's poll is only a safety net)
      applied: () => publisher.soon(),
    });
  await publisher.start();

  const inspect = tokenInspector({
    issuer,
    keys: createRemoteJWKSet(new URL(config.GRANTLINE_JWKS_URI ?? `${issuer}/oauth2/jwks`), {
      cooldownDuration: 30_000,
      cacheMaxAge: 600_000,
    }),
    facts: factSet,
    clients: (id) => clients.get(id),
    users: (id) => users.user(id),
    pool,
    schema,
    refreshIdleSeconds: config.REFRESH_TOKEN_IDLE_SECONDS,
    refreshMaxLifetimeSeconds: config.REFRESH_TOKEN_MAX_LIFETIME_SECONDS,
    clock,
  });
  const auth = clientAuthentication({
    clients,
    kv,
    deploymentPrefix: topicPrefix,
    service: 'introspection',
    failuresPerMinute: config.CLIENT_AUTH_FAILURES_PER_MINUTE,
    allowPrivateJwksUri: config.GRANTLINE_ALLOW_PRIVATE_JWKS_URI,
    assertionAudiences: [
      config.GRANTLINE_INTROSPECTION_ENDPOINT ?? `${issuer}/oauth2/introspect`,
      config.GRANTLINE_TOKEN_ENDPOINT ?? `${issuer}/oauth2/token`,
      issuer,
    ],
    logger,
    clock,
  });
  const signingKeys = config.GRANTLINE_INTROSPECTION_SIGNING_KEY;

  const service = {
    name: 'introspection',
    logger,
    readiness: {
      ...runtime.readiness,
      // not ready while the deny-list lacks a fact it should hold (Redis restarted empty): rebuilt first
      'revocation-cache': () => publisher.ensureWarm(),
    },
    onShutdown: [() => publisher.stop(), unwatchClients, unwatchUsers, unwatchFacts, ...runtime.shutdown],
    formEndpoints: {
      '/oauth2/introspect': introspectEndpoint({ auth, inspect, issuer, signingKey: signingKeys[0]!, clock }),
    },
    routes: (app, log) => {
      app.get('/oauth2/introspection/jwks', introspectionJwksEndpoint(signingKeys));
      app.get('/oauth2/revocations/stream', revocationStreamEndpoint({ auth, facts, publisher, clock }));
      app.use('/oauth2', oauthErrorBoundary(log));
    },
  } satisfies ServiceModule;
  return { ...service, runtime, publisher };
};

/** The introspection service on listeners of its own (the distributed mode). */
export const startIntrospection = async (
  config: IntrospectionConfig,
  runtimes: RuntimeFactory,
  options: StartOptions = {},
) => {
  const { runtime, publisher, ...module } = await buildIntrospection(config, runtimes, options);
  return { ...(await startService({ ...module, ...listenOptions(config) })), runtime, publisher };
};
