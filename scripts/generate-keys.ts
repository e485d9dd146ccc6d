// pnpm keys:generate — a new, complete set of per-purpose keys (README, "Keys by purpose"), printed
// as one block of environment variables per service: give each service only its own block.
import { generateKeyMaterial, serviceKeyEnv } from '@grantline/keys';

const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
for (const [service, env] of Object.entries(serviceKeyEnv(generateKeyMaterial()))) {
  console.log(`# ${service}`);
  for (const [name, value] of Object.entries(env)) console.log(`${name}=${quote(value)}`);
  console.log();
}
