import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, type Logger, startTelemetry, type Telemetry } from '@grantline/telemetry';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { pinoHttp } from 'pino-http';
import { type ReadinessCheck, runChecks } from './health.ts';

export interface ServiceOptions {
  name: string;
  port: number;
  host?: string;
  logLevel?: string;
  otlpEndpoint?: string | undefined;
  /** what `/readyz` reports on: Postgres, Kafka, Redis, ... */
  readiness: Record<string, ReadinessCheck>;
  /** mounts the service's endpoints */
  routes: (app: Express, logger: Logger) => void;
  /** run in order on shutdown, after the server stopped accepting and drained (flush relay, disconnect) */
  onShutdown?: (() => Promise<unknown>)[];
  shutdownTimeoutMs?: number;
  /** reuse an already started telemetry (tests start several services in one process) */
  telemetry?: Telemetry;
}

export interface RunningService {
  url: string;
  logger: Logger;
  app: Express;
  /** graceful: stop accepting, finish in-flight requests, run shutdown hooks */
  stop(): Promise<void>;
}

/** An RFC 7807 problem document (the admin APIs' and infrastructure endpoints' error form). */
export const problem = (res: Response, status: number, title: string, detail?: string, extra: object = {}) =>
  res
    .status(status)
    .type('application/problem+json')
    .json({ type: 'about:blank', title, status, ...(detail && { detail }), ...extra });

/**
 * One service process: express with request logs (secrets redacted), `/healthz` (the process is
 * alive), `/readyz` (its dependencies answer, and it is not shutting down), `/metrics` (Prometheus),
 * an error boundary that never leaks a stack, and graceful shutdown.
 */
export const startService = async (options: ServiceOptions): Promise<RunningService> => {
  const logger = createLogger({ name: options.name, ...(options.logLevel && { level: options.logLevel }) });
  const telemetry =
    options.telemetry ?? startTelemetry({ serviceName: options.name, otlpEndpoint: options.otlpEndpoint });
  let shuttingDown = false;

  const app = express();
  app.disable('x-powered-by');
  // no ETags: API responses are not cached (token responses are no-store), and hashing every body costs
  app.set('etag', false);
  app.set('trust proxy', 'loopback');
  app.use((_req, res, next) => {
    // while draining, ask keep-alive clients to reconnect elsewhere so the drain ends promptly
    if (shuttingDown) res.setHeader('Connection', 'close');
    next();
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    if (shuttingDown) return void problem(res, 503, 'Service Unavailable', 'shutting down');
    const report = await runChecks(options.readiness);
    res
      .status(report.ready ? 200 : 503)
      .json({ status: report.ready ? 'ready' : 'not ready', checks: report.checks });
  });
  app.get('/metrics', (req, res) => telemetry.metricsHandler(req, res));
  // Request logs at info level; below it the middleware is not installed at all (it costs ~10% of a
  // token request even when it writes nothing).
  if (logger.isLevelEnabled('info')) {
    app.use(
      pinoHttp({
        logger,
        // no query strings in logs: a misbehaving client may put a credential there
        serializers: {
          req: (req) => ({ id: req.id, method: req.method, path: String(req.url).split('?')[0] }),
        },
      }),
    );
  }
  options.routes(app, logger);
  app.use((req: Request, res: Response) =>
    problem(res, 404, 'Not Found', `no route for ${req.method} ${req.path}`),
  );
  app.use(
    (error: Error & { status?: number; type?: string }, req: Request, res: Response, _next: NextFunction) => {
      // body-parser errors carry a status (413 too large, 400 malformed, 415 charset)
      if (error.status && error.status >= 400 && error.status < 500) {
        return problem(
          res,
          error.status,
          error.status === 413 ? 'Payload Too Large' : 'Bad Request',
          error.type ?? error.message,
        );
      }
      req.log?.error({ err: error }, 'unhandled error');
      return problem(res, 500, 'Internal Server Error');
    },
  );

  // a port in use (EADDRINUSE) fails the start instead of leaving it waiting forever
  const server: Server = await new Promise((resolve, reject) => {
    // express 5 hands a listen error (EADDRINUSE) to this callback
    const s = app.listen(options.port, options.host ?? '127.0.0.1', (error?: Error) =>
      error ? reject(error) : resolve(s),
    );
  });
  server.keepAliveTimeout = 5_000;
  const { port, address } = server.address() as AddressInfo;
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  logger.info({ url }, `${options.name} listening`);

  const stop = async () => {
    if (shuttingDown) return;
    shuttingDown = true;
    const timer = setTimeout(() => {
      logger.error('graceful shutdown timed out; exiting');
      process.exit(1);
    }, options.shutdownTimeoutMs ?? 10_000);
    timer.unref();
    await new Promise<void>((resolve) => {
      // Connections that finish their request become idle; close them as they do, not at keep-alive expiry.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      server.close(() => {
        clearInterval(sweep);
        resolve();
      });
      server.closeIdleConnections();
    });
    for (const hook of options.onShutdown ?? []) {
      await hook().catch((error: unknown) => logger.warn({ err: error }, 'shutdown step failed'));
    }
    if (!options.telemetry) await telemetry.shutdown().catch(() => {});
    clearTimeout(timer);
    logger.info(`${options.name} stopped`);
  };
  return { url, logger, app, stop };
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
