// pnpm keys:generate — a new, complete set of per-purpose keys (README, "Keys by purpose"), printed
// as one block of environment variables per service: give each service only its own block.
// pnpm keys:generate --helm — the same keys, with a new admin token and key-encryption key, as the
// `secrets:` values of the Helm chart (deploy/helm/grantline), one entry per purpose.
import { randomBytes } from 'node:crypto';
import { generateKeyMaterial, serviceKeyEnv } from '@grantline/keys';

const env = serviceKeyEnv(generateKeyMaterial());

/** The chart's name of a variable: GRANTLINE_SESSION_SIGNING_KEY is `sessionSigningKey`. */
const chartId = (variable: string) =>
  variable
    .replace(/^GRANTLINE_/, '')
    .toLowerCase()
    .replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

if (process.argv.includes('--helm')) {
  const secrets = new Map<string, string>([
    ['adminToken', randomBytes(32).toString('base64url')],
    ['keyEncryptionKey', randomBytes(32).toString('base64url')],
  ]);
  for (const [service, variables] of Object.entries(env)) {
    for (const [name, value] of Object.entries(variables)) {
      // the CSRF key has one variable name in two services, and a value of each service's own
      secrets.set(name === 'GRANTLINE_CSRF_KEY' ? `${service}CsrfKey` : chartId(name), value);
    }
  }
  console.log('# Grantline secrets for the Helm chart: keep this file out of version control.');
  console.log('secrets:');
  // a JSON string is a valid YAML double-quoted scalar
  for (const [id, value] of secrets) console.log(`  ${id}:\n    value: ${JSON.stringify(value)}`);
} else {
  const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
  for (const [service, variables] of Object.entries(env)) {
    console.log(`# ${service}`);
    for (const [name, value] of Object.entries(variables)) console.log(`${name}=${quote(value)}`);
    console.log();
  }
}
