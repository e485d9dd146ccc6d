import { runServiceMain } from '@grantline/service-kit';
import { startRegistry } from './app.ts';
import { registryConfigSchema } from './config.ts';

await runServiceMain('registry', registryConfigSchema, startRegistry);
