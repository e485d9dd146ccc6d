// Writes packages/events/schemas/<ceType>.json for every event type: the published contract.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventCatalogue, jsonSchemaOf } from '../src/index.ts';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'schemas');
mkdirSync(dir, { recursive: true });
for (const definition of eventCatalogue.values()) {
  writeFileSync(
    join(dir, `${definition.ceType}.json`),
    `${JSON.stringify(jsonSchemaOf(definition.type), null, 2)}\n`,
  );
}
console.log(`wrote ${eventCatalogue.size} schemas to ${dir}`);
