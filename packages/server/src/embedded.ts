import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { buildAuthorization } from '@grantline/authorization';
import { authorizationConfigSchema } from '@grantline/authorization/config';
import { buildConsent } from '@grantline/consent';
import { consentConfigSchema } from '@grantline/consent/config';
import { buildIntrospection } from '@grantline/introspection';
import { introspectionConfigSchema } from '@grantline/introspection/config';
import type { ServiceName } from '@grantline/keys';
import { buildRegistry } from '@grantline/registry';
import { registryConfigSchema } from '@grantline/registry/config';
import {
  embeddedHost,
  exitOnCrash,
  loadConfig,
  runChecks,
  type ServiceModule,
  StartupError,
  serviceApps,
} from '@grantline/service-kit';
import { createLogger, type DestinationStream, startTelemetry } from '@grantline/telemetry';
import { buildToken } from '@grantline/token';
import { tokenConfigSchema } from '@grantline/token/config';
import type { Express } from 'express';
import { z } from 'zod';
import { type DemoSeed, demoRoutes, seedDemo } from './demo.ts';
import { MANAGEMENT_ROUTES, pathMatches, serviceFor } from './routes.ts';
import { environmentHasSecrets, localSecrets, serviceSecretEnv, withoutKeyVariables } from './secrets.ts';

/** The settings of `pnpm start`. Everything else has a default fit for one machine. */
export const embeddedConfigSchema = z.object({
  /** the one public port: every service's endpoints, and the demo */
  PORT: z.coerce.number().int().min(0).max(65_535).default(4000),
  /** the management port (`/admin`, `/metrics`, `/readyz` with checks); default PORT + 1000 */
  MANAGEMENT_PORT: z.coerce.number().int().min(0).max(65_535).optional(),
  /** address to listen on (both listeners) */
  HOST: z.string().default('127.0.0.1'),
  /** the issuer; default `http://localhost:<PORT>` */
  GRANTLINE_ISSUER: z.url().optional(),
  /** where the embedded database, the local secrets and the demo's details are kept */
  GRANTLINE_DATA_DIR: z.string().min(1).default('.grantline/data'),
  /**
   * the demo organisations, user, clients and `/demo` page (which shows the demo user's password);
   * default: on when the issuer is a loopback address (`localhost`, 127.0.0.1, [::1]), else off
   */
  GRANTLINE_DEMO: z
    .enum(['true', 'false'])
    .optional()
    .transform((v) => (v === undefined ? undefined : v === 'true')),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('warn'),
});

export interface EmbeddedServer {
  issuer: string;
  url: string;
  managementUrl: string;
  dataDir: string;
  secretsFile: string;
  demo: (DemoSeed & { url: string }) | undefined;
  stop(): Promise<void>;
}

const listen = (
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port: number,
  host: string,
  variable: string,
) =>
  new Promise<Server>((ok, fail) => {
    const server = createServer(handler);
    server.once('error', (error: NodeJS.ErrnoException) =>
      fail(
        error.code === 'EADDRINUSE'
          ? new StartupError(
              `port ${port} on ${host} is already in use (${variable}). Stop what uses it, or set ${variable}.`,
            )
          : error,
      ),
    );
    server.listen(port, host, () => ok(server));
  });

/** Whether a URL names this machine only (the demo is on by default for such an issuer only). */
export const isLoopback = (url: string): boolean => {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\./.test(host);
};

const origin = (server: Server, host: string) =>
  `http://${host.includes(':') ? `[${host}]` : host}:${(server.address() as AddressInfo).port}`;

const close = (server: Server) =>
  new Promise<void>((done) => {
    server.close(() => done());
    server.closeIdleConnections();
  });

/**
 * Only one process may open an embedded database: a second one would corrupt it. The lock is a file
 * the holder touches every few seconds (`grantline.lock`, naming its pid and a random token): a lock
 * touched recently is held, whatever its pid says (pids repeat across containers, pid 1 in each); one
 * left untouched for LOCK_STALE_MS by a process that is gone is taken over.
 */
const LOCK_STALE_MS = 15_000;
const LOCK_TOUCH_MS = 5_000;
const locked = new Set<string>();
const lockDataDir = (dataDir: string): (() => void) => {
  const file = join(dataDir, 'grantline.lock');
  if (locked.has(dataDir))
    throw new StartupError(
      `${dataDir} (GRANTLINE_DATA_DIR) is already open in this process. Give the second server another GRANTLINE_DATA_DIR.`,
    );
  const token = randomBytes(16).toString('hex');
  const claim = () => {
    try {
      writeFileSync(file, JSON.stringify({ pid: process.pid, token }), { flag: 'wx', mode: 0o600 });
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      return false;
    }
  };
  if (!claim()) {
    const holder = (() => {
      try {
        return {
          ...(JSON.parse(readFileSync(file, 'utf8')) as { pid?: number }),
          touched: statSync(file).mtimeMs,
        };
      } catch {
        return { pid: undefined, touched: 0 };
      }
    })();
    if (Date.now() - holder.touched < LOCK_STALE_MS)
      throw new StartupError(
        `another Grantline (pid ${holder.pid ?? 'unknown'}) is using ${dataDir} (GRANTLINE_DATA_DIR). Stop it, or give this one another GRANTLINE_DATA_DIR.`,
      );
    // stale: its holder stopped touching it; whoever removes and re-creates it first holds it
    rmSync(file, { force: true });
    if (!claim())
      throw new StartupError(
        `another Grantline is starting on ${dataDir} (GRANTLINE_DATA_DIR). Stop it, or give this one another GRANTLINE_DATA_DIR.`,
      );
  }
  locked.add(dataDir);
  const touch = setInterval(() => {
    try {
      const now = new Date();
      utimesSync(file, now, now);
    } catch {
      // the directory went away: the database will say so
    }
  }, LOCK_TOUCH_MS);
  touch.unref();
  return () => {
    clearInterval(touch);
    locked.delete(dataDir);
    try {
      if ((JSON.parse(readFileSync(file, 'utf8')) as { token?: string }).token === token)
        rmSync(file, { force: true });
    } catch {
      // already gone
    }
  };
};

/**
 * `pnpm start`: every service in this process, on one port and one origin, on the embedded runtime
 * (PGlite under GRANTLINE_DATA_DIR, an in-process bus, in-memory counters). Needs nothing but Node.
 * The first start seeds the demo (unless GRANTLINE_DEMO=false); every start keeps what the last one
 * stored: clients, users, grants and signing keys.
 */
export const startEmbedded = async (
  env: Record<string, string | undefined> = process.env,
  options: { logDestination?: DestinationStream } = {},
): Promise<EmbeddedServer> => {
  const config = loadConfig(embeddedConfigSchema, env);
  const dataDir = resolve(config.GRANTLINE_DATA_DIR);
  const logger = createLogger({
    name: 'grantline',
    level: config.LOG_LEVEL,
    destination: options.logDestination,
  });
  const secretsFile = join(dataDir, 'secrets.json');
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new StartupError(
      `cannot create ${dataDir} (GRANTLINE_DATA_DIR): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}. Point GRANTLINE_DATA_DIR at a directory this user can write.`,
    );
  }
  // the lock first: two first starts must not each write the secrets the other then reads
  const unlock = lockDataDir(dataDir);
  const secrets = (() => {
    try {
      return localSecrets(secretsFile);
    } catch (error) {
      unlock();
      throw error;
    }
  })();
  if (!environmentHasSecrets(env))
    logger.debug({ secretsFile }, 'secrets not set in the environment come from the local secrets file');

  const issuer = (config.GRANTLINE_ISSUER ?? `http://localhost:${config.PORT}`).replace(/\/$/, '');
  const keys = serviceSecretEnv(secrets, env);
  const shared = {
    ...withoutKeyVariables(env),
    LOG_LEVEL: config.LOG_LEVEL,
    GRANTLINE_ISSUER: issuer,
    HOST: config.HOST,
    PORT: String(config.PORT),
  };
  const envOf = (service: ServiceName) => ({ ...shared, ...keys[service] });
  const host = await embeddedHost({ dataDir: join(dataDir, 'pglite'), logger }).catch((error: unknown) => {
    unlock();
    throw error;
  });
  const built: { name: ServiceName; module: ServiceModule }[] = [];
  const stopModules = async () => {
    for (const { module } of [...built].reverse())
      for (const step of module.onShutdown)
        await step().catch((error: unknown) => logger.warn({ err: error }, 'shutdown step failed'));
    await host.close().catch((error: unknown) => logger.warn({ err: error }, 'closing the database failed'));
    unlock();
  };
  let shuttingDown = false;
  const servers: Server[] = [];
  try {
    const start = { onCrash: exitOnCrash(logger), logDestination: options.logDestination };
    // parse every configuration first: a bad variable is reported before anything is built
    const registryConfig = loadConfig(registryConfigSchema, envOf('registry'));
    const tokenConfig = loadConfig(tokenConfigSchema, envOf('token'));
    const authorizationConfig = loadConfig(authorizationConfigSchema, envOf('authorization'));
    const consentConfig = loadConfig(consentConfigSchema, envOf('consent'));
    const introspectionConfig = loadConfig(introspectionConfigSchema, envOf('introspection'));
    built.push({ name: 'registry', module: await buildRegistry(registryConfig, host.runtime, start) });
    built.push({ name: 'token', module: await buildToken(tokenConfig, host.runtime, start) });
    built.push({
      name: 'authorization',
      module: await buildAuthorization(authorizationConfig, host.runtime, start),
    });
    built.push({ name: 'consent', module: await buildConsent(consentConfig, host.runtime, start) });
    built.push({
      name: 'introspection',
      module: await buildIntrospection(introspectionConfig, host.runtime, start),
    });

    const telemetry = startTelemetry({
      serviceName: 'grantline',
      otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT,
    });
    const apps = Object.fromEntries(
      built.map(({ name, module }) => [
        name,
        serviceApps(module, {
          telemetry,
          trustedProxies: tokenConfig.GRANTLINE_TRUSTED_PROXIES,
          shuttingDown: () => shuttingDown,
        }),
      ]),
    ) as Record<ServiceName, { app: Express; management: Express }>;
    const readiness = Object.assign({}, host.readiness, ...built.map(({ module }) => module.readiness));
    const health = async (res: ServerResponse, detailed: boolean) => {
      const report = shuttingDown ? { ready: false, checks: {} } : await runChecks(readiness);
      res.writeHead(report.ready ? 200 : 503, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          status: report.ready ? 'ready' : 'not ready',
          ...(detailed && { checks: report.checks }),
        }),
      );
    };
    let demo: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
    const path = (req: IncomingMessage) => (req.url ?? '/').split('?')[0]!;

    const publicServer = await listen(
      (req, res) => {
        const p = path(req);
        if (p === '/readyz') return void health(res, false);
        if (p === '/healthz')
          return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
        if (demo && pathMatches(p, '/demo')) return demo(req, res);
        apps[serviceFor(p)].app(req, res);
      },
      config.PORT,
      config.HOST,
      'PORT',
    );
    servers.push(publicServer);
    const managementPort = config.MANAGEMENT_PORT ?? (config.PORT === 0 ? 0 : config.PORT + 1000);
    const managementServer = await listen(
      (req, res) => {
        const p = path(req);
        if (p === '/readyz') return void health(res, true);
        if (p === '/metrics' || p === '/healthz') return apps.registry.management(req, res);
        apps[serviceFor(p, MANAGEMENT_ROUTES, 'registry')].management(req, res);
      },
      managementPort,
      config.HOST,
      'MANAGEMENT_PORT',
    );
    servers.push(managementServer);
    const url = origin(publicServer, config.HOST);
    const managementUrl = origin(managementServer, config.HOST);

    let seed: EmbeddedServer['demo'];
    if (config.GRANTLINE_DEMO ?? isLoopback(issuer)) {
      const seeded = await seedDemo({
        file: join(dataDir, 'demo.json'),
        issuer,
        publicUrl: url,
        managementUrl,
        adminToken: keys.registry.GRANTLINE_ADMIN_TOKEN!,
      });
      demo = demoRoutes({ issuer, publicUrl: url, seed: seeded });
      seed = { ...seeded, url: `${issuer}/demo` };
    }
    return {
      issuer,
      url,
      managementUrl,
      dataDir,
      secretsFile,
      demo: seed,
      stop: async () => {
        if (shuttingDown) return;
        shuttingDown = true;
        await Promise.all(servers.map(close));
        await stopModules();
        await telemetry.shutdown().catch(() => {});
      },
    };
  } catch (error) {
    shuttingDown = true;
    await Promise.all(servers.map(close));
    await stopModules();
    throw error;
  }
};
