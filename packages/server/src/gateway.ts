/**
 * The development gateway: one origin in front of the distributed services, so the discovery
 * document names one origin and the session cookie is first-party to every service, as in the
 * embedded mode. It routes by the one route table (routes.ts) and proxies with http-proxy-middleware:
 * bodies stream through unchanged, and so do Set-Cookie and Location (no rewriting is configured).
 */
import { Agent, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ServiceName } from '@grantline/keys';
import type { Logger } from '@grantline/telemetry';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { MANAGEMENT_ROUTES, PUBLIC_FALLBACK, PUBLIC_ROUTES, type Route, routeFor } from './routes.ts';

export interface GatewayOptions {
  /** port of the public origin (0 picks a free one) */
  port: number;
  /** address both listeners bind */
  host: string;
  /** each service's origin (`http://127.0.0.1:8081`), where the gateway sends its public paths */
  targets: Record<ServiceName, string>;
  /** port of the management origin (`/admin`), if there is to be one (0 picks a free one) */
  managementPort?: number;
  /** the management origins of the services that MANAGEMENT_ROUTES names; required with `managementPort` */
  managementTargets?: Partial<Record<ServiceName, string>>;
  /** how long a service may take to start answering before the gateway answers 504 (default 30 s) */
  upstreamTimeoutMs?: number;
  /** where proxy failures are logged; none by default */
  logger?: Logger;
}

export interface Gateway {
  url: string;
  managementUrl?: string;
  /** stops accepting, lets requests in flight finish, and closes the connections to the services */
  stop: () => Promise<void>;
}

/** Which service answers a path, and where it listens; no service: the gateway answers 404. */
interface Table {
  serviceOf: (path: string) => ServiceName | undefined;
  origins: ReadonlyMap<ServiceName, string>;
}

/** An invalid option combination: thrown by `startGateway` before it listens anywhere. */
export class GatewayConfigError extends Error {
  override readonly name = 'GatewayConfigError';
}

const origin = (name: string, value: string | undefined): string => {
  if (!value) throw new GatewayConfigError(`no target for ${name}`);
  if (!URL.canParse(value)) throw new GatewayConfigError(`target of ${name} is not a URL: ${value}`);
  return new URL(value).origin;
};

/** RFC 7807 problem; the detail names the service, never the cause (that goes to the log only). */
const problem = (res: ServerResponse, status: number, title: string, detail: string) => {
  const body = JSON.stringify({ type: 'about:blank', title, status, detail });
  res.writeHead(status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
};

/**
 * The gateway is the edge: it replaces whatever forwarded headers a client sent with what it saw
 * itself, so a service that trusts the gateway (GRANTLINE_TRUSTED_PROXIES) learns the real client
 * address and cannot be told another one. Set on the incoming headers, which http-proxy copies, so
 * this holds for every request (its `proxyReq` event skips `Expect: 100-continue` ones).
 */
const setForwardedHeaders = (req: IncomingMessage) => {
  delete req.headers.forwarded;
  delete req.headers['x-forwarded-port'];
  req.headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
  req.headers['x-forwarded-proto'] = 'http';
  if (req.headers.host) req.headers['x-forwarded-host'] = req.headers.host;
  else delete req.headers['x-forwarded-host'];
};

const pathOf = (req: IncomingMessage) => (req.url ?? '/').split('?')[0];

/** One listener's request handler: proxy to the service the table names, else a 404 problem. */
const proxy = (table: Table, agent: Agent, timeoutMs: number, logger: Logger | undefined) => {
  const timedOut = new WeakSet<IncomingMessage>();
  const target = (req: IncomingMessage) => {
    const service = table.serviceOf(req.url ?? '/');
    return service && table.origins.get(service);
  };
  const failed = (error: Error, req: IncomingMessage, res: ServerResponse | Socket) => {
    const service = table.serviceOf(req.url ?? '/');
    logger?.warn({ err: error, service, path: pathOf(req) }, 'gateway: proxy failed');
    if (!('writeHead' in res)) return res.destroy();
    // a response already under way cannot turn into a problem: cut it short
    if (res.headersSent) return res.destroy();
    if (timedOut.has(req))
      return problem(res, 504, 'Gateway Timeout', `the ${service} service did not answer in time`);
    problem(res, 502, 'Bad Gateway', `the ${service} service is unavailable`);
  };
  const middleware = createProxyMiddleware<IncomingMessage, ServerResponse>({
    pathFilter: (path) => table.serviceOf(path) !== undefined,
    router: target,
    // the Host header of the original request reaches the service unchanged
    changeOrigin: false,
    agent,
    proxyTimeout: timeoutMs,
    on: {
      proxyReq: (proxyReq, req) => proxyReq.once('timeout', () => timedOut.add(req)),
      error: failed,
    },
  });
  return (req: IncomingMessage, res: ServerResponse) => {
    setForwardedHeaders(req);
    void middleware(req, res, (error?: unknown) =>
      error
        ? failed(error instanceof Error ? error : new Error(String(error)), req, res)
        : problem(res, 404, 'Not Found', `no route for ${req.method} ${pathOf(req)}`),
    );
  };
};

const listen = (handler: ReturnType<typeof proxy>, port: number, host: string) =>
  new Promise<{ server: Server; url: string }>((resolve, reject) => {
    const server = createServer(handler);
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const { address, port: bound } = server.address() as AddressInfo;
      resolve({ server, url: `http://${address.includes(':') ? `[${address}]` : address}:${bound}` });
    });
  });

/** Stops accepting and waits for requests in flight; idle keep-alive connections close at once. */
const close = (server: Server) =>
  new Promise<void>((resolve) => {
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });

const tableOf = (
  routes: readonly Route[],
  targets: Partial<Record<ServiceName, string>>,
  fallback?: ServiceName,
): Table => {
  const services = new Set([...routes.map((r) => r.service), ...(fallback ? [fallback] : [])]);
  return {
    serviceOf: (path) => routeFor(path, routes) ?? fallback,
    origins: new Map([...services].map((s) => [s, origin(s, targets[s])])),
  };
};

/** the longest a connection to a service stays idle in the gateway's pool, below Node's 5 s server default */
const IDLE_UPSTREAM_MS = 4_000;

export const startGateway = async (options: GatewayOptions): Promise<Gateway> => {
  const { port, host, targets, managementPort, managementTargets, logger } = options;
  const timeoutMs = options.upstreamTimeoutMs ?? 30_000;
  const publicTable = tableOf(PUBLIC_ROUTES, targets, PUBLIC_FALLBACK);
  if ((managementPort === undefined) !== (managementTargets === undefined))
    throw new GatewayConfigError('managementPort and managementTargets go together');
  const managementTable = managementTargets && tableOf(MANAGEMENT_ROUTES, managementTargets);
  // Keep-alive to the services. An idle connection must be dropped here before the service drops it
  // (Node's default: 5 s), or a request sent on it as the service closes it fails (ECONNRESET, a 502).
  // Node 20's agent applies the service's Keep-Alive hint (less a second) only when it is below the
  // agent's own `timeout`, which is unset by default: so the timeout is set, and the hint lowers it.
  const agent = new Agent({ keepAlive: true, timeout: IDLE_UPSTREAM_MS });

  const servers: Server[] = [];
  const stop = async () => {
    await Promise.all(servers.map(close));
    agent.destroy();
  };
  try {
    const publicListener = await listen(proxy(publicTable, agent, timeoutMs, logger), port, host);
    servers.push(publicListener.server);
    if (!managementTable || managementPort === undefined) return { url: publicListener.url, stop };
    const management = await listen(proxy(managementTable, agent, timeoutMs, logger), managementPort, host);
    servers.push(management.server);
    return { url: publicListener.url, managementUrl: management.url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
};
