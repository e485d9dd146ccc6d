import { runServiceMain } from '@grantline/service-kit';
import { startAuthorization } from './app.ts';
import { authorizationConfigSchema } from './config.ts';

await runServiceMain('authorization', authorizationConfigSchema, startAuthorization, {
  needsRedis: true,
});
