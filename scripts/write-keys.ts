// `node dist/grantline.js keys <dir>` (the compose file's one-shot `keys` service): a complete set of
// per-purpose keys, an admin token and a key-encryption key, written once as one directory per
// service (<dir>/<service>/<service>.env, mode 0600). Compose mounts each service's directory alone
// (a volume `subpath`), so a service (or the example API) that is broken into reads only its own
// keys, never another's or the admin token. A directory that already has them is left as it is:
// restarting compose must not rotate every key.
//
// `node dist/grantline.js keys --register-example <dir>` (compose's one-shot `example-registration`):
// with the admin token, registers the example invoices API as a resource-server client and writes
// only its client id and secret to <dir>/resource-server-example.env, so the example itself never
// holds the admin token.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateKeyMaterial, type ServiceName, serviceKeyEnv } from '@grantline/keys';
import { registerResourceServer } from '../examples/resource-server/register.ts';

/** Besides its keys: the admin API's bearer (registry, token, consent) and the token service's KEK. */
const EXTRA: Record<ServiceName, (s: { adminToken: string; kek: string }) => Record<string, string>> = {
  registry: (s) => ({ GRANTLINE_ADMIN_TOKEN: s.adminToken }),
  token: (s) => ({ GRANTLINE_ADMIN_TOKEN: s.adminToken, GRANTLINE_KEY_ENCRYPTION_KEY: s.kek }),
  consent: (s) => ({ GRANTLINE_ADMIN_TOKEN: s.adminToken }),
  authorization: () => ({}),
  introspection: () => ({}),
};
const SERVICES = Object.keys(EXTRA) as ServiceName[];
/** the admin token, for the registration step and the operator (never mounted by a long-running service) */
const ADMIN = 'admin';
const EXAMPLE = 'resource-server-example';

// single quotes: a JWK's double quotes stay as they are (the dotenv format process.loadEnvFile reads)
const line = (name: string, value: string) => `${name}='${value}'`;
const write = (file: string, vars: Record<string, string>) =>
  writeFileSync(
    file,
    `${Object.entries(vars)
      .map(([n, v]) => line(n, v))
      .join('\n')}\n`,
    { mode: 0o600 },
  );

/**
 * A volume written by an earlier version holds every file in its root: move each into its own
 * directory (a new set would make the event store's sealed data unreadable) and drop the example's
 * copy of the admin token.
 */
const migrateFlatLayout = (dir: string) => {
  for (const service of SERVICES) {
    const old = join(dir, `${service}.env`);
    const now = join(dir, service, `${service}.env`);
    if (existsSync(old) && !existsSync(now)) {
      mkdirSync(join(dir, service), { recursive: true, mode: 0o700 });
      renameSync(old, now);
    }
  }
  const oldToken = join(dir, 'admin-token');
  if (existsSync(oldToken) && !existsSync(join(dir, ADMIN, 'admin-token'))) {
    mkdirSync(join(dir, ADMIN), { recursive: true, mode: 0o700 });
    const token = readFileSync(oldToken, 'utf8').trim();
    write(join(dir, ADMIN, 'admin.env'), { GRANTLINE_ADMIN_TOKEN: token });
    renameSync(oldToken, join(dir, ADMIN, 'admin-token'));
  }
  rmSync(join(dir, `${EXAMPLE}.env`), { force: true });
};

const writeKeys = (dir: string) => {
  mkdirSync(dir, { recursive: true });
  migrateFlatLayout(dir);
  const files = [
    ...SERVICES.map((s) => join(s, `${s}.env`)),
    join(ADMIN, 'admin.env'),
    join(ADMIN, 'admin-token'),
  ];
  // the registration step writes the example's credentials here; the directory must exist to be mounted
  mkdirSync(join(dir, EXAMPLE), { recursive: true, mode: 0o700 });
  if (files.every((f) => existsSync(join(dir, f)))) {
    console.log(`keys: ${dir} already holds every service's keys; nothing written`);
    return;
  }
  const secrets = {
    adminToken: randomBytes(32).toString('base64url'),
    kek: randomBytes(32).toString('base64url'),
  };
  const keys = serviceKeyEnv(generateKeyMaterial());
  for (const [service, env] of Object.entries(keys) as [ServiceName, Record<string, string>][]) {
    mkdirSync(join(dir, service), { recursive: true, mode: 0o700 });
    write(join(dir, service, `${service}.env`), { ...env, ...EXTRA[service](secrets) });
  }
  mkdirSync(join(dir, ADMIN), { recursive: true, mode: 0o700 });
  write(join(dir, ADMIN, 'admin.env'), { GRANTLINE_ADMIN_TOKEN: secrets.adminToken });
  // the operator's copy of the admin token, for the admin API on the management gateway
  writeFileSync(join(dir, ADMIN, 'admin-token'), `${secrets.adminToken}\n`, { mode: 0o600 });
  console.log(`keys: wrote ${files.join(', ')} to ${dir}`);
};

const registerExample = async (dir: string) => {
  const file = join(dir, `${EXAMPLE}.env`);
  if (existsSync(file)) {
    console.log(`keys: ${file} exists; the example is registered already`);
    return;
  }
  const env = process.env;
  const adminToken = env.GRANTLINE_ADMIN_TOKEN;
  const registrationEndpoint = env.GRANTLINE_REGISTRATION_ENDPOINT;
  const managementUrl = env.GRANTLINE_MANAGEMENT_URL;
  const resource = env.GRANTLINE_EXAMPLE_RESOURCE;
  if (!adminToken || !registrationEndpoint || !managementUrl || !resource)
    throw new Error(
      'set GRANTLINE_ADMIN_TOKEN, GRANTLINE_REGISTRATION_ENDPOINT, GRANTLINE_MANAGEMENT_URL and GRANTLINE_EXAMPLE_RESOURCE',
    );
  const { clientId, clientSecret } = await registerResourceServer({
    registrationEndpoint,
    managementUrl,
    adminToken,
    resource,
  });
  mkdirSync(dir, { recursive: true });
  write(file, { GRANTLINE_CLIENT_ID: clientId, GRANTLINE_CLIENT_SECRET: clientSecret });
  console.log(`keys: registered the example as resource server ${clientId} of ${resource}; wrote ${file}`);
};

const args = process.argv.slice(3);
try {
  if (args[0] === '--register-example') await registerExample(resolve(args[1] ?? 'keys'));
  else writeKeys(resolve(args[0] ?? process.env.GRANTLINE_KEYS_DIR ?? 'keys'));
} catch (error) {
  console.error(`keys: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
