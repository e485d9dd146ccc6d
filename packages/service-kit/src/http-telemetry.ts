import type { IncomingMessage, ServerResponse } from 'node:http';
import { ATTRS, extractTraceContext, lazyInstruments, METRICS, SPANS } from '@grantline/telemetry';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Request, RequestHandler } from 'express';

const tracer = trace.getTracer('@grantline/service-kit');
const instruments = lazyInstruments('@grantline/service-kit', (meter) => ({
  duration: meter.createHistogram(METRICS.httpServerDuration, {
    unit: 's',
    description: 'HTTP server requests by method, route template and status',
  }),
}));

/**
 * The route template that answered (`/oauth2/grants/:grantId`), never the raw path: a path carries
 * ids, so as a metric attribute it would make one series per grant. Undefined when no route matched.
 */
const routeOf = (req: Request): string | undefined => {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : undefined;
};

/**
 * The HTTP server span and request metric of every request, in place of
 * `@opentelemetry/instrumentation-http` and `-express`: those patch modules as they are required,
 * which ESM imports (tsx, vitest) bypass. Same names and attributes (semantic conventions): the span
 * continues a W3C `traceparent` the caller sent, is named `{method} {route}` and ends with the
 * response; `http.server.request.duration` carries method, route and status. The rest of the request
 * runs in the span's context, body parsing and `finish` included: AsyncLocalStorage carries it into
 * the callbacks of what the request starts. (Binding the request and response emitters as well wraps
 * every listener of every request, about 5% of a token request's CPU, for nothing more.)
 */
export const httpTelemetry = (): RequestHandler => (req, res, next) =>
  inServerSpan(req, res, req.path, () => routeOf(req), next);

/**
 * Runs `handle` in the server span of one request (`httpTelemetry`'s, for a request express does not
 * see: the protocol routes on bare `node:http`). `route` is asked for the template once the response
 * is done.
 */
export const inServerSpan = (
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  route: () => string | undefined,
  handle: () => void,
): void => {
  const started = performance.now();
  const method = req.method ?? 'GET';
  const parent = extractTraceContext(req.headers);
  const span = tracer.startSpan(
    method,
    {
      kind: SpanKind.SERVER,
      attributes: { [ATTRS.httpMethod]: method, [ATTRS.urlPath]: path },
    },
    parent,
  );
  const active = trace.setSpan(parent, span);
  res.once('finish', () => finished(method, route(), res.statusCode, span, started));
  res.once('close', () => {
    // a client that went away before the response was written: still one request, status unknown
    if (!res.writableFinished) finished(method, route(), res.statusCode, span, started, 'aborted');
  });
  context.with(active, handle);
};

const finished = (
  method: string,
  route: string | undefined,
  status: number,
  span: ReturnType<typeof tracer.startSpan>,
  started: number,
  aborted?: 'aborted',
) => {
  const attributes: Record<string, string | number> = {
    [ATTRS.httpMethod]: method,
    [ATTRS.httpStatus]: status,
  };
  if (route) attributes[ATTRS.httpRoute] = route;
  if (aborted) attributes[ATTRS.errorType] = aborted;
  else if (status >= 500) attributes[ATTRS.errorType] = String(status);
  instruments().duration.record((performance.now() - started) / 1000, attributes);
  if (route) span.updateName(SPANS.httpServer(method, route));
  span.setAttributes(attributes);
  // semantic conventions: a 4xx is the client's error, not the server span's
  if (aborted || status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
};
