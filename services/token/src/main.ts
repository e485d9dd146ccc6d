import { runServiceMain } from '@grantline/service-kit';
import { startToken } from './app.ts';
import { tokenConfigSchema } from './config.ts';

await runServiceMain('token', tokenConfigSchema, startToken, { needsRedis: true });
