// pnpm start:services — every service built so far, each as its own process, against the Postgres,
// Kafka and Redis named by DATABASE_URL / KAFKA_BROKERS / REDIS_URL, or found/started like the tests'
// (running local servers, Docker, or local processes with Kafka from Maven Central jars), behind the
// development gateway: one public origin (PORT) and one management origin, as in the embedded mode.
// Prints the issuer URL once every service is ready. Ctrl-C stops what it started.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  generateKeyMaterial,
  KEY_VARIABLES,
  type KeyMaterial,
  type ServiceName,
  serviceKeyEnv,
} from '@grantline/keys';
import { startGateway } from '@grantline/server';
import { createLogger } from '@grantline/telemetry';
import { databaseUrlFor, repoRoot, resolveInfrastructure } from '@grantline/testing';
import pg from 'pg';

const basePort = Number(process.env.GRANTLINE_BASE_PORT ?? 8080);
// the one public origin: the gateway on PORT (default the base port); the services on the next four
const gatewayPort = Number(process.env.PORT ?? basePort);
// management (/admin, /metrics, detailed /readyz): the management gateway 1000 above the base port by
// default, each service's own management listener on the next four
const managementBasePort = Number(process.env.GRANTLINE_MANAGEMENT_BASE_PORT ?? basePort + 1000);
const host = process.env.GRANTLINE_PUBLIC_HOST ?? '127.0.0.1';
// the services listen on loopback only: they believe the X-Forwarded-For of any loopback peer
const serviceUrl = (offset: number) => `http://127.0.0.1:${basePort + offset}`;
const managementUrl = (offset: number) => `http://127.0.0.1:${managementBasePort + offset}`;

type DevSecrets = { adminToken: string; kek: string } & KeyMaterial;

/**
 * Development secrets, generated once and kept in .grantline/ (git-ignored); the environment wins.
 * A file written by an older version gets what it lacks (the per-purpose keys) and keeps the rest.
 */
const devSecrets = (): DevSecrets => {
  const dir = join(repoRoot, '.grantline');
  const file = join(dir, 'dev-secrets.json');
  const old: Partial<DevSecrets> & { flowSecret?: string } = existsSync(file)
    ? JSON.parse(readFileSync(file, 'utf8'))
    : {};
  const secrets: DevSecrets = {
    adminToken: old.adminToken ?? randomBytes(32).toString('base64url'),
    kek: old.kek ?? randomBytes(32).toString('base64url'),
    ...generateKeyMaterial(old),
  };
  // the one secret the services used to share is gone (one key per purpose now)
  if (JSON.stringify(secrets) !== JSON.stringify(old)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  }
  return secrets;
};

const { infra, stop: stopInfra } = await resolveInfrastructure();
console.log(
  `infrastructure: postgres (${infra.origin.postgres}), redis (${infra.origin.redis}), kafka (${infra.origin.kafka})`,
);

// one database for all services (each has its own schema), created on first start
const database = process.env.GRANTLINE_DATABASE ?? 'grantline';
const admin = new pg.Client({ connectionString: infra.databaseUrl });
await admin.connect();
const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${database.replace(/[^a-z0-9_]/g, '')}`);
await admin.end();

const secrets = devSecrets();
const generated = serviceKeyEnv(secrets);
/** each service's key variables: its own, from the environment where set, else the development ones */
const keysOf = (service: ServiceName) =>
  Object.fromEntries(
    Object.entries(generated[service]).map(([name, value]) => [name, process.env[name] ?? value]),
  );
if (
  !process.env.GRANTLINE_ADMIN_TOKEN ||
  !process.env.GRANTLINE_KEY_ENCRYPTION_KEY ||
  KEY_VARIABLES.some((name) => !process.env[name])
) {
  console.warn(
    'warning: using development secrets from .grantline/dev-secrets.json; in production set GRANTLINE_ADMIN_TOKEN, GRANTLINE_KEY_ENCRYPTION_KEY and the keys of each service (README, "Keys by purpose")',
  );
}
// no service inherits another's key variables from this shell
const environment = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !KEY_VARIABLES.includes(name)),
);
const issuer = process.env.GRANTLINE_ISSUER ?? `http://${host}:${gatewayPort}`;
const common = {
  ...environment,
  DATABASE_URL: databaseUrlFor(infra.databaseUrl, database),
  KAFKA_BROKERS: infra.kafkaBrokers.join(','),
  REDIS_URL: infra.redisUrl,
  HOST: '127.0.0.1',
  // the gateway says who the client is; the login limiter counts per client address
  GRANTLINE_TRUSTED_PROXIES: 'loopback',
  GRANTLINE_ADMIN_TOKEN: process.env.GRANTLINE_ADMIN_TOKEN ?? secrets.adminToken,
  GRANTLINE_KEY_ENCRYPTION_KEY: process.env.GRANTLINE_KEY_ENCRYPTION_KEY ?? secrets.kek,
  // every public URL is on the one origin: the gateway routes each path to its service
  GRANTLINE_ISSUER: issuer,
  GRANTLINE_AUTHORIZATION_URL: issuer,
  GRANTLINE_CONSENT_URL: `${issuer}/consent`,
  GRANTLINE_GRANTS_ENDPOINT: `${issuer}/oauth2/grants`,
  GRANTLINE_TOKEN_ENDPOINT: `${issuer}/oauth2/token`,
  GRANTLINE_JWKS_URI: `${issuer}/oauth2/jwks`,
  GRANTLINE_INTROSPECTION_ENDPOINT: `${issuer}/oauth2/introspect`,
  GRANTLINE_REGISTRATION_ENDPOINT: `${issuer}/oauth2/register`,
};
const services: {
  name: ServiceName;
  offset: number;
  env: Record<string, string | undefined>;
}[] = [
  { name: 'authorization', offset: 1, env: keysOf('authorization') },
  { name: 'registry', offset: 2, env: { PUBLIC_URL: issuer, ...keysOf('registry') } },
  { name: 'token', offset: 3, env: keysOf('token') },
  { name: 'consent', offset: 4, env: keysOf('consent') },
  { name: 'introspection', offset: 5, env: keysOf('introspection') },
].map((s) => ({
  ...s,
  // GRANTLINE_<SERVICE>_WORKERS: that service's GRANTLINE_WORKERS (processes sharing its ports)
  env: {
    ...s.env,
    GRANTLINE_WORKERS:
      process.env[`GRANTLINE_${s.name.toUpperCase()}_WORKERS`] ?? process.env.GRANTLINE_WORKERS,
  },
  port: basePort + s.offset,
  managementPort: managementBasePort + s.offset,
}));

const children: ChildProcess[] = [];
let gateway: Awaited<ReturnType<typeof startGateway>> | undefined;
let stopping = false;
const stopAll = async (code: number) => {
  if (stopping) return;
  stopping = true;
  await gateway?.stop();
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(
    children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)),
  );
  await stopInfra();
  process.exit(code);
};
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

const start = (service: (typeof services)[number]) => {
  const child = spawn(
    process.execPath,
    [
      // `--cpu-prof --cpu-prof-dir=<dir>` given to this script profile every service too (BENCH_CPU_PROFILE)
      ...process.execArgv.filter((a) => a === '--cpu-prof' || a.startsWith('--cpu-prof-dir=')),
      // tsx's ES-module hooks only: its CommonJS hook builds a stack trace on every require() of
      // every module, and kafkajs requires its protocol modules on every request
      '--import',
      'tsx/esm',
      join(repoRoot, 'services', service.name, 'src', 'main.ts'),
    ],
    {
      cwd: repoRoot,
      env: {
        ...common,
        ...service.env,
        PORT: String(service.port),
        MANAGEMENT_PORT: String(service.managementPort),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  child.once('exit', (code) => {
    if (!stopping) {
      console.error(`${service.name} exited with code ${code}; stopping the others`);
      void stopAll(1);
    }
  });
  children.push(child);
};

const deadline = Date.now() + 120_000;
const ready = async (service: (typeof services)[number]) => {
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${service.port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) {
      // the public /readyz names no check: the management port says which one fails
      const report = await fetch(`${managementUrl(service.offset)}/readyz`).then(
        (r) => r.text(),
        (e: Error) => e.message,
      );
      console.error(`${service.name} did not become ready: ${report}`);
      await stopAll(1);
    }
    await sleep(200);
  }
};

// the registry first: it creates the topics and migrates first, so the others do not race it there
const first = services.find((s) => s.name === 'registry')!;
const rest = services.filter((s) => s !== first);
start(first);
await ready(first);
for (const service of rest) start(service);
for (const service of rest) await ready(service);

const byName = (url: (offset: number) => string) =>
  Object.fromEntries(services.map((s) => [s.name, url(s.offset)])) as Record<ServiceName, string>;
const management = byName(managementUrl);
try {
  gateway = await startGateway({
    port: gatewayPort,
    host: process.env.HOST ?? '127.0.0.1',
    targets: byName(serviceUrl),
    managementPort: managementBasePort,
    managementTargets: {
      registry: management.registry,
      token: management.token,
      consent: management.consent,
    },
    logger: createLogger({ name: 'gateway' }),
  });
} catch (error) {
  console.error(`the gateway did not start: ${(error as Error).message}`);
  await stopAll(1);
}
console.log(`\nGrantline is running behind one origin. Issuer: ${issuer}`);
console.log(`  metadata:      ${issuer}/.well-known/oauth-authorization-server`);
console.log(
  `  registration:  ${issuer}/oauth2/register   (Bearer an initial access token: POST /admin/initial-access-tokens)`,
);
console.log(`  token:         ${issuer}/oauth2/token`);
console.log(
  `  introspection: ${issuer}/oauth2/introspect   (revocations: ${issuer}/oauth2/revocations/stream)`,
);
console.log(`  authorize:     ${issuer}/oauth2/authorize   (sign-in at /login, consent at /consent)`);
console.log(
  `  admin API:     ${managementUrl(0)}/admin   (Bearer GRANTLINE_ADMIN_TOKEN; development value in .grantline/dev-secrets.json)`,
);
console.log(`  key rotation:  ${managementUrl(0)}/admin/keys/rotate`);
console.log(
  `  management:    ${services.map((s) => `${s.name} ${managementUrl(s.offset)}`).join(', ')}   (/metrics, /readyz with every check)`,
);
