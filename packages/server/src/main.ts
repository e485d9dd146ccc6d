// pnpm start — every service in this one process, on one port (PORT, default 4000), on the embedded
// runtime: PGlite under GRANTLINE_DATA_DIR (default .grantline/data), an in-process bus, in-memory
// counters. Nothing but Node is needed; nothing else is started. Ctrl-C stops it; the data stays.
import { join, relative } from 'node:path';
import { describeStartupFailure, stopOnSignals } from '@grantline/service-kit';
import { isLoopback, startEmbedded } from './embedded.ts';

try {
  const server = await startEmbedded();
  // paths under the working directory relative to it, others in full
  const shown = (path: string) => {
    const near = relative(process.cwd(), path);
    return near && !near.startsWith('..') ? near : path;
  };
  const lines = [
    '',
    `Grantline is running: every service in this process, data in ${shown(server.dataDir)}`,
    `  issuer:        ${server.issuer}`,
    `  metadata:      ${server.issuer}/.well-known/oauth-authorization-server`,
    `  admin API:     ${server.managementUrl}/admin   (Bearer the "adminToken" in ${shown(server.secretsFile)})`,
    `  management:    ${server.managementUrl}/readyz, ${server.managementUrl}/metrics`,
  ];
  if (
    server.demo &&
    (!/^(127\.|::1$|localhost$)/.test(process.env.HOST ?? '127.0.0.1') || !isLoopback(server.issuer))
  )
    console.warn(
      "warning: the demo page shows the demo user's password to whoever reaches it, and HOST or the issuer is not a loopback address; set GRANTLINE_DEMO=false",
    );
  if (server.demo)
    lines.push(
      '',
      `Demo: open ${server.demo.url} and connect the demo app`,
      `  sign in as "${server.demo.user.username}" with password "${server.demo.user.password}"`,
      `  clients, user and organisations: ${shown(join(server.dataDir, 'demo.json'))}`,
    );
  console.log(lines.join('\n'));
  stopOnSignals({
    stop: async () => {
      const timeoutMs = Number(process.env.SHUTDOWN_TIMEOUT_MS ?? 10_000);
      setTimeout(() => {
        console.error(`grantline: did not stop within ${timeoutMs} ms (SHUTDOWN_TIMEOUT_MS); exiting`);
        process.exit(1);
      }, timeoutMs).unref();
      await server.stop();
      console.log(`Grantline stopped; its data stays in ${shown(server.dataDir)}`);
    },
  });
} catch (error) {
  console.error(describeStartupFailure('grantline', error));
  process.exit(1);
}
