import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type FormEndpoint, nodeFormEndpoint } from '@grantline/oauth';
import type { Logger } from '@grantline/telemetry';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { pinoHttp } from 'pino-http';
import proxyaddr from 'proxy-addr';
import { StartupError } from './config.ts';
import { httpTelemetry, inServerSpan } from './http-telemetry.ts';

/** An RFC 7807 problem document (the admin APIs' and infrastructure endpoints' error form). */
export const problem = (res: Response, status: number, title: string, detail?: string, extra: object = {}) =>
  res
    .status(status)
    .type('application/problem+json')
    .json({ type: 'about:blank', title, status, ...(detail && { detail }), ...extra });

/**
 * One line per request: method, path without the query, status and timing. No headers and no query
 * string: a `Location` carries codes, challenges and verdicts, `Authorization` and `Cookie` carry
 * credentials, and a misbehaving client may put a token in a query string. The request id is
 * pino-http's per-process counter.
 */
const requestLogger = (logger: Logger) =>
  pinoHttp({
    logger,
    serializers: {
      req: (req: { id: unknown; method: string; url: string }) => ({
        id: req.id,
        method: req.method,
        path: String(req.url).split('?')[0],
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });

/**
 * An express app with the settings and request log every listener of a service shares. Only the
 * `trustedProxies` may say who the client is (`X-Forwarded-For`): the services listen on loopback
 * behind a gateway too, so trusting loopback would let every caller pick its own address.
 */
export const baseApp = (
  logger: Logger,
  shuttingDown: () => boolean,
  trustedProxies: readonly string[] = [],
): Express => {
  const app = express();
  app.disable('x-powered-by');
  // no ETags: API responses are not cached (token responses are no-store), and hashing every body costs
  app.set('etag', false);
  app.set('trust proxy', trustedProxies.length > 0 ? [...trustedProxies] : false);
  app.use(httpTelemetry());
  app.use((_req, res, next) => {
    // while draining, ask keep-alive clients to reconnect elsewhere so the drain ends promptly
    if (shuttingDown()) res.setHeader('Connection', 'close');
    next();
  });
  // Request logs at info level; below it the middleware is not installed at all (it costs ~10% of a
  // token request even when it writes nothing).
  if (logger.isLevelEnabled('info')) app.use(requestLogger(logger));
  return app;
};

/**
 * A public listener's request handler: the service's protocol endpoints (POSTed forms at exact
 * paths) on bare `node:http`, everything else through its express app (ADR 5). What `baseApp` does
 * for every request is done here too, the same way: the server span and request metric, the request
 * log line at info level, `Connection: close` while draining, and the client's address by the same
 * trusted proxies (express's `trust proxy` is `proxy-addr` too).
 */
export const withProtocolRoutes = (
  app: Express,
  endpoints: Record<string, FormEndpoint>,
  options: { logger: Logger; trustedProxies: readonly string[]; shuttingDown: () => boolean },
): RequestListener => {
  const routes = new Map(
    Object.entries(endpoints).map(([path, endpoint]) => [path, nodeFormEndpoint(endpoint, options.logger)]),
  );
  if (routes.size === 0) return app;
  const trust = proxyaddr.compile([...options.trustedProxies]);
  const log = options.logger.isLevelEnabled('info') ? requestLogger(options.logger) : undefined;
  return (req, res) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const route = req.method === 'POST' ? routes.get(path) : undefined;
    if (!route) return app(req, res);
    inServerSpan(
      req,
      res,
      path,
      () => path,
      () => {
        if (options.shuttingDown()) res.setHeader('Connection', 'close');
        log?.(req, res);
        const address = options.trustedProxies.length > 0 ? proxyaddr(req, trust) : req.socket.remoteAddress;
        void route(req, res, address);
      },
    );
  };
};

/** The end of every app: a 404 problem, and an error boundary that never leaks a stack. */
export const finishApp = (app: Express): void => {
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
};

/** Listens, failing the start on a port in use (EADDRINUSE) instead of waiting forever. */
export const listen = async (
  handler: RequestListener,
  port: number,
  host: string,
): Promise<{ server: Server; url: string }> => {
  const server: Server = await new Promise((resolve, reject) => {
    const s = createServer(handler);
    s.once('error', (error: Error & { code?: string }) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES')
        return reject(
          new StartupError(
            `${host}:${port} ${error.code === 'EADDRINUSE' ? 'is already in use' : 'may not be listened on'}: stop what listens there, or choose another port (PORT, MANAGEMENT_PORT)`,
          ),
        );
      reject(error);
    });
    s.listen(port, host, () => resolve(s));
  });
  server.keepAliveTimeout = 5_000;
  const { port: bound, address } = server.address() as AddressInfo;
  return { server, url: `http://${address.includes(':') ? `[${address}]` : address}:${bound}` };
};

/** Stops accepting and resolves once in-flight requests have finished. */
export const drain = (server: Server): Promise<void> =>
  new Promise<void>((resolve) => {
    // Connections that finish their request become idle; close them as they do, not at keep-alive expiry.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
