// `pnpm example:resource-server` (and `node dist/grantline.js resource-server-example`): the invoices
// API as a process, configured from the environment (see configFromEnv in server.ts).
import { configFromEnv, startInvoicesApi } from './server.ts';

try {
  const api = await startInvoicesApi(configFromEnv());
  console.log(`invoices API on ${api.url}  (client ${api.clientId}; audience ${api.url})`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void api.stop());
} catch (error) {
  console.error(`invoices API: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
