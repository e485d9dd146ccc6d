// pnpm start:services — every service built so far, each as its own process, against the Postgres,
// Kafka and Redis named by DATABASE_URL / KAFKA_BROKERS / REDIS_URL, or found/started like the tests'
// (running local servers, Docker, or local processes with Kafka from Maven Central jars).
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
import { databaseUrlFor, repoRoot, resolveInfrastructure } from '@grantline/testing';
import pg from 'pg';

const basePort = Number(process.env.GRANTLINE_BASE_PORT ?? 8080);
// management listeners (/admin, /metrics, detailed /readyz): 1000 above the public ports by default
const managementBasePort = Number(process.env.GRANTLINE_MANAGEMENT_BASE_PORT ?? basePort + 1000);
const host = process.env.GRANTLINE_PUBLIC_HOST ?? '127.0.0.1';
const url = (offset: number) => `http://${host}:${basePort + offset}`;
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
const issuer = process.env.GRANTLINE_ISSUER ?? url(0);
const common = {
  ...environment,
  DATABASE_URL: databaseUrlFor(infra.databaseUrl, database),
  KAFKA_BROKERS: infra.kafkaBrokers.join(','),
  REDIS_URL: infra.redisUrl,
  HOST: process.env.HOST ?? '127.0.0.1',
  GRANTLINE_ADMIN_TOKEN: process.env.GRANTLINE_ADMIN_TOKEN ?? secrets.adminToken,
  GRANTLINE_KEY_ENCRYPTION_KEY: process.env.GRANTLINE_KEY_ENCRYPTION_KEY ?? secrets.kek,
  GRANTLINE_ISSUER: issuer,
  GRANTLINE_AUTHORIZATION_URL: url(0),
  GRANTLINE_CONSENT_URL: `${url(3)}/consent`,
  GRANTLINE_GRANTS_ENDPOINT: `${url(3)}/oauth2/grants`,
  GRANTLINE_TOKEN_ENDPOINT: `${url(2)}/oauth2/token`,
  GRANTLINE_JWKS_URI: `${url(2)}/oauth2/jwks`,
  GRANTLINE_REGISTRATION_ENDPOINT: `${url(1)}/oauth2/register`,
};
const services: {
  name: ServiceName;
  offset: number;
  env: Record<string, string | undefined>;
}[] = [
  { name: 'authorization', offset: 0, env: keysOf('authorization') },
  { name: 'registry', offset: 1, env: { PUBLIC_URL: url(1), ...keysOf('registry') } },
  { name: 'token', offset: 2, env: keysOf('token') },
  { name: 'consent', offset: 3, env: keysOf('consent') },
].map((s) => ({ ...s, port: basePort + s.offset, managementPort: managementBasePort + s.offset }));

const children: ChildProcess[] = [];
let stopping = false;
const stopAll = async (code: number) => {
  if (stopping) return;
  stopping = true;
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
    ['--import', 'tsx', join(repoRoot, 'services', service.name, 'src', 'main.ts')],
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
console.log(`\nGrantline is running. Issuer: ${issuer}`);
console.log(`  metadata:      ${issuer}/.well-known/oauth-authorization-server`);
console.log(
  `  registration:  ${url(1)}/oauth2/register   (Bearer an initial access token: POST /admin/initial-access-tokens)`,
);
console.log(`  token:         ${url(2)}/oauth2/token`);
console.log(
  `  authorize:     ${issuer}/oauth2/authorize   (sign-in at /login, consent at ${url(3)}/consent)`,
);
console.log(
  `  admin API:     ${managementUrl(1)}/admin   (Bearer GRANTLINE_ADMIN_TOKEN; development value in .grantline/dev-secrets.json)`,
);
console.log(`  key rotation:  ${managementUrl(2)}/admin/keys/rotate`);
console.log(
  `  management:    ${services.map((s) => `${s.name} ${managementUrl(s.offset)}`).join(', ')}   (/metrics, /readyz with every check)`,
);
