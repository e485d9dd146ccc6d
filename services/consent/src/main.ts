import { runServiceMain } from '@grantline/service-kit';
import { startConsent } from './app.ts';
import { consentConfigSchema } from './config.ts';

await runServiceMain('consent', consentConfigSchema, startConsent, { needsRedis: true });
