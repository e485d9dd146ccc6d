import { systemClock } from '@grantline/clock';
import { GroupCommit, migrateReadModels } from '@grantline/event-store';
import { TOPICS } from '@grantline/events';
import { FlowKeys } from '@grantline/flow';
import {
  endedSessionsProjection,
  endedSessionsTables,
  grantsProjection,
  grantsTables,
} from '@grantline/grant-directory';
import { KeyEncryptionKey, KeyManager } from '@grantline/keys';
import { clientAuthentication, oauthErrorBoundary } from '@grantline/oauth';
import {
  ClientDirectory,
  registryDirectoryProjection,
  registryDirectoryTables,
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
import type { TokenConfig } from './config.ts';
import { rotateKeysEndpoint } from './endpoints/admin-keys.ts';
import { jwksEndpoint } from './endpoints/jwks.ts';
import { revokeEndpoint } from './endpoints/revoke.ts';
import { tokenEndpoint } from './endpoints/token.ts';
import { authorizationCodeGrant } from './grants/authorization-code.ts';
import { clientCredentialsGrant } from './grants/client-credentials.ts';
import { refreshTokenGrant } from './grants/refresh-token.ts';
import { appendGateTables, postgresStandingReads, waitingOutAppends } from './grants/standing.ts';
import { accessTokenIssuer } from './issuer.ts';
import { wideRevocationsProjection, wideRevocationsTables } from './projections/wide-revocations.ts';
import type { RevocationDeps } from './revocation.ts';

/**
 * The token service: the token and revocation (RFC 7009) endpoints, signing keys and the JWKS; it
 * projects registry clients, grants and the admin's subject and client revocations.
 */
export const buildToken = async (
  config: TokenConfig,
  runtimes: RuntimeFactory,
  options: StartOptions = {},
) => {
  const logger = createLogger({
    name: 'token',
    level: config.LOG_LEVEL,
    destination: options.logDestination,
  });
  const kek = KeyEncryptionKey.from({
    value: config.GRANTLINE_KEY_ENCRYPTION_KEY,
    file: config.GRANTLINE_KEY_ENCRYPTION_KEY_FILE,
  });
  const clock = options.clock ?? systemClock;
  const runtime = await runtimes({ service: 'token', logger, clock });
  const { pool, schema, kv, topicPrefix } = runtime;
  await migrateReadModels(pool, schema, [
    ...registryDirectoryTables,
    grantsTables,
    endedSessionsTables,
    wideRevocationsTables,
    appendGateTables,
  ]);

  const keys = new KeyManager({
    pool,
    schema,
    kek,
    logger,
    rotationLeadSeconds: config.KEY_ROTATION_LEAD_SECONDS,
    retainSeconds: config.ACCESS_TOKEN_TTL_SECONDS + 300,
    clock,
  });
  await keys.start();

  const clients = new ClientDirectory(pool, schema);
  const unwatchClients = clients.watch(logger);
  const onCrash = options.onCrash ?? exitOnCrash(logger);
  await runtime.project('token-directory', [TOPICS.registry], registryDirectoryProjection(schema), onCrash);
  // F10: applying a revocation waits out the appends in flight (`waitingOutAppends`)
  await runtime.project(
    'token-grants',
    [TOPICS.grants],
    waitingOutAppends(schema, grantsProjection(schema), ['GrantRevoked']),
    onCrash,
  );
  await runtime.project(
    'token-wide-revocations',
    [TOPICS.grants],
    waitingOutAppends(schema, wideRevocationsProjection(schema), ['SubjectRevoked', 'ClientRevoked']),
    onCrash,
  );
  if (config.REFRESH_TOKEN_ENDS_WITH_SESSION)
    await runtime.project('token-sessions', [TOPICS.grants], endedSessionsProjection(schema), onCrash);
  // what this service holds of the flow (packages/keys KEY_PURPOSES): it opens codes, and signs nothing
  const flowKeys = new FlowKeys({
    codeDecryption: config.GRANTLINE_CODE_DECRYPTION_KEY,
    verifying: { codeSigning: config.GRANTLINE_CODE_VERIFY_KEYS },
    clock,
  });

  const issue = accessTokenIssuer({
    keys,
    events: new GroupCommit(runtime.store),
    issuer: config.GRANTLINE_ISSUER,
    ttlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    clock,
  });
  const defaultAudience = config.DEFAULT_AUDIENCE ?? config.GRANTLINE_ISSUER;
  const tokenEndpointUrl = config.GRANTLINE_TOKEN_ENDPOINT ?? `${config.GRANTLINE_ISSUER}/oauth2/token`;
  const auth = clientAuthentication({
    clients,
    kv,
    deploymentPrefix: topicPrefix,
    service: 'token',
    failuresPerMinute: config.CLIENT_AUTH_FAILURES_PER_MINUTE,
    allowPrivateJwksUri: config.GRANTLINE_ALLOW_PRIVATE_JWKS_URI,
    assertionAudiences: [tokenEndpointUrl, config.GRANTLINE_ISSUER],
    logger,
    clock,
  });
  const revocation: RevocationDeps = {
    store: runtime.store,
    keys,
    issuer: config.GRANTLINE_ISSUER,
    accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    clock,
    authorizationCodeClient: async (token) => (await flowKeys.decrypt(token))?.cid,
  };

  // what the authorization code and refresh grants both read, record and issue with
  const standing = postgresStandingReads(pool, schema, {
    endedSessions: config.REFRESH_TOKEN_ENDS_WITH_SESSION,
  });
  const grantDeps = { store: runtime.store, standing, issue, defaultAudience, clock };
  const service = {
    name: 'token',
    logger,
    readiness: runtime.readiness,
    onShutdown: [async () => keys.stop(), unwatchClients, ...runtime.shutdown],
    formEndpoints: {
      '/oauth2/token': tokenEndpoint({
        auth,
        grants: [
          clientCredentialsGrant({ issue, defaultAudience }),
          authorizationCodeGrant({
            ...grantDeps,
            keys: flowKeys,
            accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
          }),
          refreshTokenGrant({
            ...grantDeps,
            policy: {
              graceSeconds: config.REFRESH_TOKEN_GRACE_SECONDS,
              idleSeconds: config.REFRESH_TOKEN_IDLE_SECONDS,
              maxLifetimeSeconds: config.REFRESH_TOKEN_MAX_LIFETIME_SECONDS,
              accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
              catchUpMs: config.PROJECTION_CATCH_UP_MS,
            },
          }),
        ],
      }),
      '/oauth2/revoke': revokeEndpoint({ auth, revocation, logger }),
    },
    routes: (app, log) => {
      app.get('/oauth2/jwks', jwksEndpoint(keys));
      app.use('/oauth2', oauthErrorBoundary(log));
    },
    managementRoutes: (app) => {
      app.post('/admin/keys/rotate', rotateKeysEndpoint(keys, config.GRANTLINE_ADMIN_TOKEN));
    },
  } satisfies ServiceModule;
  return { ...service, runtime, keys };
};

/** The token service on listeners of its own (the distributed mode). */
export const startToken = async (
  config: TokenConfig,
  runtimes: RuntimeFactory,
  options: StartOptions = {},
) => {
  const { runtime, keys, ...module } = await buildToken(config, runtimes, options);
  return { ...(await startService({ ...module, ...listenOptions(config) })), runtime, keys };
};
