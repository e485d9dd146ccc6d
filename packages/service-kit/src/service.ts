import {
  createLogger,
  type DestinationStream,
  type Logger,
  startTelemetry,
  type Telemetry,
} from '@grantline/telemetry';
import type { Express } from 'express';
import { type ReadinessCheck, runChecks } from './health.ts';
import { baseApp, drain, finishApp, listen, problem } from './http.ts';

export { problem } from './http.ts';

export interface ServiceOptions {
  name: string;
  port: number;
  /**
   * port of the management listener (`/admin`, `/metrics`, detailed `/readyz`), kept off the public
   * ingress; default `port + 1000`, and 0 (a free port) when `port` is 0
   */
  managementPort?: number | undefined;
  host?: string;
  logLevel?: string;
  /** the service's own logger, so its request lines go where its other logs go (default: a new one) */
  logger?: Logger | undefined;
  otlpEndpoint?: string | undefined;
  /** what `/readyz` reports on: Postgres, Kafka, Redis, ... */
  readiness: Record<string, ReadinessCheck>;
  /** mounts the service's public endpoints */
  routes: (app: Express, logger: Logger) => void;
  /** mounts the service's operator endpoints (`/admin/...`) on the management listener only */
  managementRoutes?: (app: Express, logger: Logger) => void;
  /** run in order on shutdown, after the server stopped accepting and drained (flush relay, disconnect) */
  onShutdown?: (() => Promise<unknown>)[];
  shutdownTimeoutMs?: number;
  /** proxies whose `X-Forwarded-For` sets `req.ip` (GRANTLINE_TRUSTED_PROXIES); none by default */
  trustedProxies?: readonly string[];
  /** reuse an already started telemetry (tests start several services in one process) */
  telemetry?: Telemetry;
}

/** What a composition root may hand a service besides its configuration. */
export interface StartOptions {
  /** a consumer or relay that gave up (default: log and exit, so the process is restarted) */
  onCrash?: (error: Error) => void;
  /** where the service's logs go (default: standard output) */
  logDestination?: DestinationStream | undefined;
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
 * One service process on two listeners. The public one serves the protocol endpoints, `/healthz`
 * (the process is alive) and `/readyz` (ready or not, naming nothing internal). The management one
 * serves `/admin/...`, `/metrics` (Prometheus) and `/readyz` with each dependency's state. Both log
 * requests (secrets redacted), answer errors as RFC 7807 problems without a stack, and shut down
 * gracefully.
 */
export const startService = async (options: ServiceOptions): Promise<RunningService> => {
  const logger =
    options.logger ??
    createLogger({ name: options.name, ...(options.logLevel && { level: options.logLevel }) });
  const telemetry =
    options.telemetry ?? startTelemetry({ serviceName: options.name, otlpEndpoint: options.otlpEndpoint });
  let shuttingDown = false;
  const ready = async () =>
    shuttingDown ? { ready: false, checks: {} } : await runChecks(options.readiness);

  const app = baseApp(logger, () => shuttingDown, options.trustedProxies);
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // the public answer names no dependency, host or error: that is for the management port
  app.get('/readyz', async (_req, res) => {
    const { ready: ok } = await ready();
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not ready' });
  });
  options.routes(app, logger);
  finishApp(app);

  const management = baseApp(logger, () => shuttingDown, options.trustedProxies);
  management.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  management.get('/readyz', async (_req, res) => {
    if (shuttingDown) return void problem(res, 503, 'Service Unavailable', 'shutting down');
    const report = await ready();
    res
      .status(report.ready ? 200 : 503)
      .json({ status: report.ready ? 'ready' : 'not ready', checks: report.checks });
  });
  management.get('/metrics', (req, res) => telemetry.metricsHandler(req, res));
  options.managementRoutes?.(management, logger);
  finishApp(management);

  const host = options.host ?? '127.0.0.1';
  const open = await listen(app, options.port, host);
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
    for (const hook of options.onShutdown ?? []) {
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

/** Stops the service on SIGTERM and SIGINT (orchestrators and Ctrl-C). */
export const stopOnSignals = (service: Pick<RunningService, 'stop'>): void => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      service.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
};
