import { systemClock } from '@grantline/clock';
import { migrateReadModels } from '@grantline/event-store';
import { TOPICS } from '@grantline/events';
import { ACCOUNT_SIGN_IN_PATH, FlowKeys } from '@grantline/flow';
import {
  EndedSessions,
  endedSessionsProjection,
  endedSessionsTables,
  GrantQueries,
  grantsProjection,
  grantsTables,
} from '@grantline/grant-directory';
import {
  clientAuthentication,
  oauthErrorBoundary,
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
import type { AccountDeps } from './account.ts';
import type { ConsentConfig } from './config.ts';
import { accountApi } from './endpoints/account-api.ts';
import { accountPage, accountSubmit } from './endpoints/account-page.ts';
import { adminRevocations } from './endpoints/admin-revocations.ts';
import { consentPage, consentSubmit } from './endpoints/consent.ts';
import { grantManagement } from './endpoints/grants.ts';
import type { ConsentDeps } from './flow.ts';
import { ConnectionQueries, grantUsageProjection, grantUsageTables } from './projections/connections.ts';
import { disconnectOrganisationOnMembershipEnd } from './reactors/memberships.ts';
import { revokeGrantOnRefreshReuse } from './reactors/token-reuse.ts';

/**
 * The consent service: owns grants (subject x client x organisations x scopes). It serves the
 * consent page, the user's connected apps (`/account/connections` and its JSON API) and the Grant
 * Management API, projects the registry, revokes a grant when the token service reports
 * refresh-token reuse in it, and serves the admin's subject and client revocations on its
 * management listener.
 */
export const buildConsent = async (
  config: ConsentConfig,
  runtimes: RuntimeFactory,
  options: StartOptions = {},
) => {
  const logger = createLogger({
    name: 'consent',
    level: config.LOG_LEVEL,
    destination: options.logDestination,
  });
  const clock = options.clock ?? systemClock;
  const runtime = await runtimes({ service: 'consent', logger, clock });
  const { pool, schema, store, kv, topicPrefix } = runtime;
  await migrateReadModels(pool, schema, [
    ...registryDirectoryTables,
    grantsTables,
    endedSessionsTables,
    grantUsageTables,
  ]);
  const onCrash = options.onCrash ?? exitOnCrash(logger);
  await runtime.project('consent-directory', [TOPICS.registry], registryDirectoryProjection(schema), onCrash);
  await runtime.project('consent-grants', [TOPICS.grants], grantsProjection(schema), onCrash);
  // sign-outs, the durable record behind the Redis copy the authorization service writes at sign-out
  await runtime.project('consent-sessions', [TOPICS.grants], endedSessionsProjection(schema), onCrash);
  // "last used" on the account page: the last access token issued under each grant
  await runtime.project('consent-grant-usage', [TOPICS.tokens], grantUsageProjection(schema), onCrash);
  await runtime.react('consent-token-reuse', [TOPICS.tokens], revokeGrantOnRefreshReuse(store), onCrash);
  await runtime.react(
    'consent-memberships',
    [TOPICS.registry],
    disconnectOrganisationOnMembershipEnd(pool, schema, store),
    onCrash,
  );

  const kvPrefix = `grantline:${topicPrefix}consent:`;
  const people = new People(pool, schema);
  const clients = new ClientDirectory(pool, schema);
  const unwatchClients = clients.watch(logger);
  const endedSessions = new EndedSessions(pool, schema);
  const authorizationUrl = config.GRANTLINE_AUTHORIZATION_URL ?? config.GRANTLINE_ISSUER;
  const deps: ConsentDeps = {
    // what this service holds (packages/keys KEY_PURPOSES): it can check a session but not make one
    keys: new FlowKeys({
      signing: { verdict: config.GRANTLINE_VERDICT_SIGNING_KEY },
      verifying: { session: config.GRANTLINE_SESSION_VERIFY_KEYS },
      csrf: config.GRANTLINE_CSRF_KEY,
      clock,
    }),
    clients,
    people,
    grants: new GrantQueries(pool, schema),
    store,
    sessions: sessionRevocations(kv, topicPrefix, (sid) => endedSessions.has(sid)),
    singleUse: singleUse(kv, kvPrefix, clock),
    completeUrl: `${authorizationUrl.replace(/\/$/, '')}/oauth2/authorize/complete`,
    awaitProjected: (position) => runtime.awaitProjected(position, TOPICS.grants),
  };
  const auth = clientAuthentication({
    clients,
    kv,
    deploymentPrefix: topicPrefix,
    service: 'consent',
    failuresPerMinute: config.CLIENT_AUTH_FAILURES_PER_MINUTE,
    allowPrivateJwksUri: config.GRANTLINE_ALLOW_PRIVATE_JWKS_URI,
    assertionAudiences: [
      config.GRANTLINE_TOKEN_ENDPOINT ?? `${config.GRANTLINE_ISSUER}/oauth2/token`,
      config.GRANTLINE_ISSUER,
    ],
    logger,
    clock,
  });
  const grants = grantManagement(deps, auth, people);
  const account: AccountDeps = {
    keys: deps.keys,
    people,
    clients,
    store,
    sessions: deps.sessions,
    connections: new ConnectionQueries(pool, schema),
    awaitProjected: deps.awaitProjected,
    signInUrl: `${authorizationUrl.replace(/\/$/, '')}${ACCOUNT_SIGN_IN_PATH}`,
    origin: new URL(config.GRANTLINE_ISSUER).origin,
    secureCookies: config.GRANTLINE_ISSUER.startsWith('https:'),
  };
  const api = accountApi(account);
  const revocations = adminRevocations({
    store,
    pool,
    schema,
    awaitProjected: runtime.awaitProjected,
    adminToken: config.GRANTLINE_ADMIN_TOKEN,
    visibilityTimeoutMs: config.REVOCATION_VISIBILITY_TIMEOUT_MS,
    knownSubject: async (subject) => (await people.user(subject)) !== undefined,
    knownClient: async (clientId) => (await clients.read(clientId)) !== undefined,
  });
  const form = pageForm(200);

  const service = {
    name: 'consent',
    logger,
    readiness: runtime.readiness,
    onShutdown: [unwatchClients, ...runtime.shutdown],
    routes: (app, log) => {
      app.get('/consent', pageHeaders, consentPage(deps));
      app.post('/consent', pageHeaders, form, consentSubmit(deps));
      app.use('/consent', pageErrorBoundary);
      app.get('/account/connections', pageHeaders, accountPage(account));
      app.post('/account/connections', pageHeaders, form, accountSubmit(account));
      app.use('/account/connections', pageErrorBoundary);
      app.get('/account/api/connections', api.list);
      app.delete('/account/api/connections/:client_id', api.removeApp);
      app.delete('/account/api/connections/:client_id/grants/:grant_id', api.removeGrant);
      app.delete(
        '/account/api/connections/:client_id/grants/:grant_id/organisations/:organisation_id',
        api.removeOrganisation,
      );
      app.get('/oauth2/grants/:grant_id', grants.query);
      app.delete('/oauth2/grants/:grant_id', grants.revoke);
      app.use('/oauth2', oauthErrorBoundary(log));
    },
    managementRoutes: (app) => {
      app.post('/admin/revocations/subjects/:subject', revocations.subject);
      app.post('/admin/revocations/clients/:client_id', revocations.client);
    },
  } satisfies ServiceModule;
  return { ...service, runtime };
};

/** The consent service on listeners of its own (the distributed mode). */
export const startConsent = async (
  config: ConsentConfig,
  runtimes: RuntimeFactory,
  options: StartOptions = {},
) => {
  const { runtime, ...module } = await buildConsent(config, runtimes, options);
  return { ...(await startService({ ...module, ...listenOptions(config) })), runtime };
};
