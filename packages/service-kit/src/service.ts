import type { Clock } from '@grantline/clock';
import { expressFormEndpoint, type FormEndpoint } from '@grantline/oauth';
import { type DestinationStream, type Logger, startTelemetry, type Telemetry } from '@grantline/telemetry';
import type { Express } from 'express';
import { type ReadinessCheck, runChecks } from './health.ts';
import { baseApp, drain, finishApp, listen, problem, withProtocolRoutes } from './http.ts';

export { problem } from './http.ts';

/**
 * A service as its module builds it: its endpoints, readiness checks and shutdown steps. It does not
 * listen: the distributed mode gives it listeners of its own (`startService`), the embedded mode
 * mounts it beside the others on one origin (`serviceApps`).
 */
export interface ServiceModule {
  name: string;
  /** what `/readyz` reports on: the database, Kafka, Redis, ... */
  readiness: Record<string, ReadinessCheck>;
  /**
   * the protocol endpoints that carry load (`/oauth2/token`, `/oauth2/introspect`, ...), POSTed forms
   * by path: served on bare `node:http` by a service's own public listener (ADR 5), and by express
   * where the service is mounted beside others (the embedded mode), the same either way
   */
  formEndpoints?: Record<string, FormEndpoint>;
  /** mounts the service's public endpoints */
  routes: (app: Express, logger: Logger) => void;
  /** mounts the service's operator endpoints (`/admin/...`) on the management listener only */
  managementRoutes?: (app: Express, logger: Logger) => void;
  /** run in order on shutdown, after the server stopped accepting and drained (flush relay, disconnect) */
  onShutdown: (() => Promise<unknown>)[];
  logger: Logger;
}

export interface ListenOptions {
  port: number;
  /**
   * port of the management listener (`/admin`, `/metrics`, detailed `/readyz`), kept off the public
   * ingress; default `port + 1000`, and 0 (a free port) when `port` is 0
   */
  managementPort?: number | undefined;
  host?: string;
  otlpEndpoint?: string | undefined;
  shutdownTimeoutMs?: number;
  /** proxies whose `X-Forwarded-For` sets `req.ip` (GRANTLINE_TRUSTED_PROXIES); none by default */
  trustedProxies?: readonly string[];
  /** reuse an already started telemetry (tests start several services in one process) */
  telemetry?: Telemetry;
}

export type ServiceOptions = ServiceModule & ListenOptions;

/** The listener settings every service's configuration carries (baseConfigSchema). */
export const listenOptions = (config: {
  PORT: number;
  MANAGEMENT_PORT?: number | undefined;
  HOST: string;
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  SHUTDOWN_TIMEOUT_MS: number;
  GRANTLINE_TRUSTED_PROXIES: readonly string[];
}): ListenOptions => ({
  port: config.PORT,
  managementPort: config.MANAGEMENT_PORT,
  host: config.HOST,
  otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
  shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
  trustedProxies: config.GRANTLINE_TRUSTED_PROXIES,
});

/** What a composition root may hand a service besides its configuration. */
export interface StartOptions {
  /** a consumer or relay that gave up (default: log and exit, so the process is restarted) */
  onCrash?: (error: Error) => void;
  /** where the service's logs go (default: standard output) */
  logDestination?: DestinationStream | undefined;
  /**
   * domain time: lifetimes, expiry and key rotation, and the time events are recorded at (default:
   * the system clock); tests pass one they move instead of sleeping
   */
  clock?: Clock | undefined;
}

export interface RunningService {
  /** the public listener */
  url: string;
  /** the management listener: `/admin/...`, `/metrics`, detailed `/readyz` */
  managementUrl: string;
  logger: Logger;
  app: Express;
  /** graceful: stop accepting, finish in-flight requests, run shutdown hooks */
  stop(): Promise<void>;
}

export const defaultManagementPort = (port: number): number => (port === 0 ? 0 : port + 1000);

/**
 * A service's two express apps. The public one serves the protocol endpoints, `/healthz` (the
 * process is alive) and `/readyz` (ready or not, naming nothing internal). The management one serves
 * `/admin/...`, `/metrics` (Prometheus) and `/readyz` with each dependency's state. Both log requests
 * (secrets redacted) and answer errors as RFC 7807 problems without a stack.
 */
export const serviceApps = (
  service: ServiceModule,
  options: {
    telemetry: Telemetry;
    trustedProxies?: readonly string[] | undefined;
    shuttingDown: () => boolean;
  },
): { app: Express; management: Express } => {
  const { logger } = service;
  const { shuttingDown } = options;
  const ready = async () =>
    shuttingDown() ? { ready: false, checks: {} } : await runChecks(service.readiness);

  const app = baseApp(logger, shuttingDown, options.trustedProxies);
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // the public answer names no dependency, host or error: that is for the management port
  app.get('/readyz', async (_req, res) => {
    const { ready: ok } = await ready();
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not ready' });
  });
  for (const [path, endpoint] of Object.entries(service.formEndpoints ?? {}))
    app.post(path, expressFormEndpoint(endpoint, logger));
  service.routes(app, logger);
  finishApp(app);

  const management = baseApp(logger, shuttingDown, options.trustedProxies);
  management.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  management.get('/readyz', async (_req, res) => {
    if (shuttingDown()) return void problem(res, 503, 'Service Unavailable', 'shutting down');
    const report = await ready();
    res
      .status(report.ready ? 200 : 503)
      .json({ status: report.ready ? 'ready' : 'not ready', checks: report.checks });
  });
  management.get('/metrics', (req, res) => options.telemetry.metricsHandler(req, res));
  service.managementRoutes?.(management, logger);
  finishApp(management);
  return { app, management };
};

/** One service process on two listeners (`serviceApps`), shut down gracefully. */
export const startService = async (options: ServiceOptions): Promise<RunningService> => {
  const { logger } = options;
  const telemetry =
    options.telemetry ?? startTelemetry({ serviceName: options.name, otlpEndpoint: options.otlpEndpoint });
  let shuttingDown = false;
  const { app, management } = serviceApps(options, {
    telemetry,
    trustedProxies: options.trustedProxies,
    shuttingDown: () => shuttingDown,
  });

  const host = options.host ?? '127.0.0.1';
  const open = await listen(
    withProtocolRoutes(app, options.formEndpoints ?? {}, {
      logger,
      trustedProxies: options.trustedProxies ?? [],
      shuttingDown: () => shuttingDown,
    }),
    options.port,
    host,
  );
  const managementPort = options.managementPort ?? defaultManagementPort(options.port);
  const admin = await listen(management, managementPort, host).catch(async (error: unknown) => {
    await drain(open.server);
    throw error;
  });
  logger.info({ url: open.url, managementUrl: admin.url }, `${options.name} listening`);

  const stop = async () => {
    if (shuttingDown) return;
    shuttingDown = true;
    const timer = setTimeout(() => {
      logger.error('graceful shutdown timed out; exiting');
      process.exit(1);
    }, options.shutdownTimeoutMs ?? 10_000);
    timer.unref();
    await Promise.all([drain(open.server), drain(admin.server)]);
    for (const hook of options.onShutdown) {
      await hook().catch((error: unknown) => logger.warn({ err: error }, 'shutdown step failed'));
    }
    if (!options.telemetry) await telemetry.shutdown().catch(() => {});
    clearTimeout(timer);
    logger.info(`${options.name} stopped`);
  };
  return { url: open.url, managementUrl: admin.url, logger, app, stop };
};

/** The default crash policy of a consumer or relay that gave up: log, and exit non-zero so it is restarted. */
export const exitOnCrash =
  (logger: Logger) =>
  (error: Error): never => {
    logger.fatal({ err: error }, 'unrecoverable failure; exiting');
    process.exit(1);
  };

/**
 * Stops the service on SIGTERM and SIGINT (orchestrators and Ctrl-C). A repeated signal while it
 * stops is ignored (a launcher such as tsx relays the Ctrl-C its process group already received, and
 * a second signal must not cut the graceful stop short); the shutdown timeout bounds the stop.
 */
export const stopOnSignals = (service: Pick<RunningService, 'stop'>): void => {
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      service.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
};
