import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  generateKeyMaterial,
  KEY_VARIABLES,
  type KeyMaterial,
  type ServiceName,
  serviceKeyEnv,
} from '@grantline/keys';
import { StartupError } from '@grantline/service-kit';

export type LocalSecrets = { adminToken: string; kek: string } & KeyMaterial;

/**
 * Secrets of a local installation, generated once and kept in `file` (mode 0600): the admin token,
 * the key-encryption key and every purpose's key. A file written by an older version gets what it
 * lacks and keeps the rest (losing the key-encryption key would make the stored signing keys
 * unreadable).
 */
export const localSecrets = (file: string): LocalSecrets => {
  let old: Partial<LocalSecrets> = {};
  if (existsSync(file)) {
    try {
      old = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new StartupError(
        `cannot read ${file}: ${(error as Error).message}. Restore it from a backup, or remove it together with the data it protects.`,
      );
    }
  }
  const secrets: LocalSecrets = {
    adminToken: old.adminToken ?? randomBytes(32).toString('base64url'),
    kek: old.kek ?? randomBytes(32).toString('base64url'),
    ...generateKeyMaterial(old),
  };
  if (JSON.stringify(secrets) !== JSON.stringify(old)) {
    try {
      // the directory holds the database too: its password hashes and encrypted keys are nobody else's
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
    } catch (error) {
      throw new StartupError(
        `cannot write ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}. Point GRANTLINE_DATA_DIR at a directory this user can write.`,
      );
    }
  }
  return secrets;
};

/** Whether the environment sets every secret itself (else the local file's are used, with a warning). */
export const environmentHasSecrets = (env: Record<string, string | undefined>): boolean =>
  !!env.GRANTLINE_ADMIN_TOKEN &&
  !!env.GRANTLINE_KEY_ENCRYPTION_KEY &&
  KEY_VARIABLES.every((name) => !!env[name]);

/**
 * Each service's secret variables: its own keys only, each from the environment where set, else
 * the local file's; the admin token and the key-encryption key likewise.
 */
export const serviceSecretEnv = (
  secrets: LocalSecrets,
  env: Record<string, string | undefined>,
): Record<ServiceName, Record<string, string>> => {
  const generated = serviceKeyEnv(secrets);
  const of = (service: ServiceName) => ({
    ...Object.fromEntries(
      Object.entries(generated[service]).map(([name, value]) => [name, env[name] ?? value]),
    ),
    GRANTLINE_ADMIN_TOKEN: env.GRANTLINE_ADMIN_TOKEN ?? secrets.adminToken,
    GRANTLINE_KEY_ENCRYPTION_KEY: env.GRANTLINE_KEY_ENCRYPTION_KEY ?? secrets.kek,
  });
  return {
    authorization: of('authorization'),
    registry: of('registry'),
    token: of('token'),
    consent: of('consent'),
    introspection: of('introspection'),
  };
};

/** The environment without any key variable: no service inherits another's keys from the shell. */
export const withoutKeyVariables = (
  env: Record<string, string | undefined>,
): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries(env).filter(([name]) => !KEY_VARIABLES.includes(name)));
