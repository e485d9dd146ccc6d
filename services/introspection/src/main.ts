import { runServiceMain } from '@grantline/service-kit';
import { startIntrospection } from './app.ts';
import { introspectionConfigSchema } from './config.ts';

await runServiceMain('introspection', introspectionConfigSchema, startIntrospection, { needsRedis: true });
