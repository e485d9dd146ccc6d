import { systemClock } from '@grantline/clock';
import { migrateReadModels } from '@grantline/event-store';
import { TOPICS } from '@grantline/events';
import { FlowKeys } from '@grantline/flow';
import { combine } from '@grantline/message-bus';
import {
  OWASP_SCRYPT_N,
  pageErrorBoundary,
  pageForm,
  pageHeaders,
  sessionRevocations,
  singleUse,
} from '@grantline/oauth';
import {
  ClientDirectory,
  People,
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
import { loginLimiter } from './adapters/login-limiter.ts';
import { passwords } from './adapters/passwords.ts';
import type { AuthorizationConfig } from './config.ts';
import { authorizeEndpoint } from './endpoints/authorize.ts';
import { completeEndpoint } from './endpoints/complete.ts';
import { loginPage, loginSubmit } from './endpoints/login.ts';
import { logoutPage, logoutSubmit } from './endpoints/logout.ts';
import { metadataEndpoint, type ServerUrls } from './endpoints/metadata.ts';
import type { FlowDeps } from './flow.ts';
import { Credentials, credentialsProjection, credentialsTables } from './projections/credentials.ts';

/**
 * The authorization service: the authorization endpoint, sign-in and sessions, and the issuer's
 * RFC 8414 metadata. It projects the registry (clients, users, scopes) and hands the browser to the
 * consent service and back with signed challenges.
 */
export const buildAuthorization = async (
  config: AuthorizationConfig,
  runtimes: RuntimeFactory,
  options: StartOptions = {},
) => {
  const logger = createLogger({
    name: 'authorization',
    level: config.LOG_LEVEL,
    destination: options.logDestination,
  });
  const clock = options.clock ?? systemClock;
  const runtime = await runtimes({ service: 'authorization', schema: 'authz', logger, clock });
  const { pool, schema, kv, topicPrefix } = runtime;
  // credentials first: it carries hashes over from the users table of older versions
  await migrateReadModels(pool, schema, [credentialsTables, ...registryDirectoryTables]);
  const onCrash = options.onCrash ?? exitOnCrash(logger);
  // a user and their password hash arrive in one transaction: sign-in never sees one without the other
  await runtime.project(
    'authorization-directory',
    [TOPICS.registry],
    combine(
      registryDirectoryProjection(schema),
      credentialsProjection(schema, config.GRANTLINE_CREDENTIALS_DECRYPTION_KEY),
    ),
    onCrash,
  );
  if (config.PASSWORD_SCRYPT_N < OWASP_SCRYPT_N)
    logger.warn(
      { PASSWORD_SCRYPT_N: config.PASSWORD_SCRYPT_N },
      'password hashes below OWASP cost (2^17): for tests only',
    );
  const kvPrefix = `grantline:${topicPrefix}authz:`;
  const people = new People(pool, schema);
  const clients = new ClientDirectory(pool, schema);
  const unwatchClients = clients.watch(logger);
  const passwordCheck = await passwords({
    credentials: new Credentials(pool, schema),
    store: runtime.store,
    keys: config.GRANTLINE_CREDENTIALS_DECRYPTION_KEY,
    cost: config.PASSWORD_SCRYPT_N,
  });

  const issuer = config.GRANTLINE_ISSUER;
  const urls: ServerUrls = {
    issuer,
    authorizationEndpoint: `${issuer}/oauth2/authorize`,
    tokenEndpoint: config.GRANTLINE_TOKEN_ENDPOINT ?? `${issuer}/oauth2/token`,
    jwksUri: config.GRANTLINE_JWKS_URI ?? `${issuer}/oauth2/jwks`,
    revocationEndpoint: config.GRANTLINE_REVOCATION_ENDPOINT ?? `${issuer}/oauth2/revoke`,
    registrationEndpoint: config.GRANTLINE_REGISTRATION_ENDPOINT ?? `${issuer}/oauth2/register`,
    grantManagementEndpoint: config.GRANTLINE_GRANTS_ENDPOINT ?? `${issuer}/oauth2/grants`,
    introspectionEndpoint: config.GRANTLINE_INTROSPECTION_ENDPOINT ?? `${issuer}/oauth2/introspect`,
  };
  const deps: FlowDeps = {
    issuer,
    consentUrl: config.GRANTLINE_CONSENT_URL ?? `${issuer}/consent`,
    // what this service holds (packages/keys KEY_PURPOSES): it cannot sign a verdict nor open a code
    keys: new FlowKeys({
      signing: {
        session: config.GRANTLINE_SESSION_SIGNING_KEY,
        codeSigning: config.GRANTLINE_CODE_SIGNING_KEY,
      },
      verifying: { verdict: config.GRANTLINE_VERDICT_VERIFY_KEYS },
      codeEncryption: config.GRANTLINE_CODE_ENCRYPTION_KEY,
      csrf: config.GRANTLINE_CSRF_KEY,
      clock,
    }),
    passwords: passwordCheck,
    clients,
    people,
    store: runtime.store,
    limiter: loginLimiter(
      kv,
      kvPrefix,
      {
        perUsername: config.LOGIN_FAILURES_PER_USERNAME,
        perAddress: config.LOGIN_FAILURES_PER_ADDRESS,
        global: config.LOGIN_FAILURES_GLOBAL,
        windowSeconds: config.LOGIN_LOCKOUT_SECONDS,
      },
      logger,
    ),
    // the session's own stream is the durable record of its sign-out (an indexed read of 1-2 rows)
    sessions: sessionRevocations(kv, topicPrefix, async (sid) =>
      (await runtime.store.readStream(`session-${sid}`)).events.some((e) => e.type === 'UserLoggedOut'),
    ),
    singleUse: singleUse(kv, kvPrefix, clock),
    sessionTtlSeconds: config.SESSION_TTL_SECONDS,
    codeTtlSeconds: config.AUTHORIZATION_CODE_TTL_SECONDS,
    secureCookies: issuer.startsWith('https:'),
    clock,
  };
  const form = pageForm(100);

  const service = {
    name: 'authorization',
    logger,
    readiness: runtime.readiness,
    onShutdown: [unwatchClients, ...runtime.shutdown],
    routes: (app) => {
      app.get(
        '/.well-known/oauth-authorization-server',
        metadataEndpoint(urls, () => people.scopeNames()),
      );
      app.get('/oauth2/authorize', pageHeaders, authorizeEndpoint(deps));
      app.post('/oauth2/authorize', pageHeaders, form, authorizeEndpoint(deps));
      app.get('/oauth2/authorize/complete', pageHeaders, completeEndpoint(deps));
      app.get('/login', pageHeaders, loginPage(deps));
      app.post('/login', pageHeaders, form, loginSubmit(deps));
      app.get('/logout', pageHeaders, logoutPage(deps));
      app.post('/logout', pageHeaders, form, logoutSubmit(deps));
      app.use(['/oauth2/authorize', '/login', '/logout'], pageErrorBoundary);
    },
  } satisfies ServiceModule;
  return { ...service, runtime, issuer };
};

/** The authorization service on listeners of its own (the distributed mode). */
export const startAuthorization = async (
  config: AuthorizationConfig,
  runtimes: RuntimeFactory,
  options: StartOptions = {},
) => {
  const { runtime, issuer, ...module } = await buildAuthorization(config, runtimes, options);
  return { ...(await startService({ ...module, ...listenOptions(config) })), runtime, issuer };
};
