// `node dist/grantline.js keys <dir>` (the compose file's one-shot `keys` service): a complete set of
// per-purpose keys, an admin token and a key-encryption key, written once as one env file per service
// (<dir>/<service>.env, mode 0600), so each service reads only its own keys (GRANTLINE_ENV_FILE). A
// directory that already has them is left as it is: restarting compose must not rotate every key.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateKeyMaterial, type ServiceName, serviceKeyEnv } from '@grantline/keys';

/** Besides its keys: the admin API's bearer (registry, token, consent) and the token service's KEK. */
const EXTRA: Record<ServiceName, (s: { adminToken: string; kek: string }) => Record<string, string>> = {
  registry: (s) => ({ GRANTLINE_ADMIN_TOKEN: s.adminToken }),
  token: (s) => ({ GRANTLINE_ADMIN_TOKEN: s.adminToken, GRANTLINE_KEY_ENCRYPTION_KEY: s.kek }),
  consent: (s) => ({ GRANTLINE_ADMIN_TOKEN: s.adminToken }),
  authorization: () => ({}),
  introspection: () => ({}),
};

// single quotes: a JWK's double quotes stay as they are (the dotenv format process.loadEnvFile reads)
const line = (name: string, value: string) => `${name}='${value}'`;

const dir = resolve(process.argv[3] ?? process.env.GRANTLINE_KEYS_DIR ?? 'keys');
const EXAMPLE = 'resource-server-example.env';
const files = [...Object.keys(EXTRA).map((s) => `${s}.env`), EXAMPLE, 'admin-token'];
if (files.every((f) => existsSync(join(dir, f)))) {
  console.log(`keys: ${dir} already holds every service's keys; nothing written`);
} else {
  mkdirSync(dir, { recursive: true });
  const secrets = {
    adminToken: randomBytes(32).toString('base64url'),
    kek: randomBytes(32).toString('base64url'),
  };
  const keys = serviceKeyEnv(generateKeyMaterial());
  for (const [service, env] of Object.entries(keys) as [ServiceName, Record<string, string>][]) {
    const all = { ...env, ...EXTRA[service](secrets) };
    const text = Object.entries(all).map(([name, value]) => line(name, value));
    writeFileSync(join(dir, `${service}.env`), `${text.join('\n')}\n`, { mode: 0o600 });
  }
  // the example registers itself as a resource server through the admin API
  writeFileSync(join(dir, EXAMPLE), `${line('GRANTLINE_ADMIN_TOKEN', secrets.adminToken)}\n`, {
    mode: 0o600,
  });
  // the operator's copy of the admin token, for the admin API on the management gateway
  writeFileSync(join(dir, 'admin-token'), `${secrets.adminToken}\n`, { mode: 0o600 });
  console.log(`keys: wrote ${files.join(', ')} to ${dir}`);
}
