import { tracingChannel } from 'node:diagnostics_channel';
import { type Attributes, context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ATTRS, SPANS } from './names.ts';

/**
 * Client spans for Postgres queries and Redis commands, named and attributed as OpenTelemetry's
 * `instrumentation-pg` and `instrumentation-ioredis` name theirs. Those patch `pg` and `ioredis` as
 * they are loaded, which needs a loader hook for ES modules (Grantline's services are ES modules, and
 * its tests load them through vitest). Instead, Postgres queries are traced by wrapping the clients
 * of the pool they are given, and Redis commands from the trace events ioredis publishes on a
 * diagnostics channel: both work wherever the client was made, with no loader flags.
 *
 * Like the ioredis instrumentation's default, a query or command gets a span only inside a trace (an
 * HTTP request, a consumed event, the relay's batch): the relay's poll and other background work
 * would otherwise each start a trace of their own.
 */
const tracer = trace.getTracer('@grantline/telemetry');

const SPAN = Symbol('span');

const inTrace = () => trace.getSpan(context.active())?.isRecording() === true;

const ended = (span: Span, error?: unknown) => {
  if (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message ?? String(error) });
    span.setAttribute(
      ATTRS.errorType,
      (error as { code?: string })?.code ?? (error as Error)?.name ?? 'error',
    );
  }
  span.end();
};

/** The SQL command a statement starts with (`SELECT`, `INSERT`, `WITH`, ...), upper case. */
const operationOf = (text: string) => /^\s*([a-zA-Z]+)/.exec(text)?.[1]?.toUpperCase() ?? 'QUERY';

type Query = (this: unknown, ...args: unknown[]) => unknown;

/** marks a statement `tracePool` already traces, so the pool client's own wrapper does not again */
const POOLED = Symbol('traced by the pool');

/**
 * Starts a query's span in the caller's context and ends it with the query: a callback, a promise or a
 * submittable (a cursor) all are traced to their end. Parameter values are never recorded, only the
 * statement's text.
 */
const traced = (query: Query, self: unknown, args: unknown[], database: string | undefined): unknown => {
  const config = args[0];
  const text = typeof config === 'string' ? config : (config as { text?: string } | undefined)?.text;
  if (!inTrace() || typeof text !== 'string') return query.apply(self, args);
  const operation = operationOf(text);
  const attributes: Attributes = {
    [ATTRS.dbSystem]: 'postgresql',
    [ATTRS.dbOperation]: operation,
    [ATTRS.dbQueryText]: text,
    ...(database && { [ATTRS.dbNamespace]: database }),
  };
  const span = tracer.startSpan(SPANS.pgQuery(operation, database), { kind: SpanKind.CLIENT, attributes });
  const callbackAt = args.findIndex((a) => typeof a === 'function');
  if (callbackAt >= 0) {
    const callback = args[callbackAt] as (error: unknown, ...rest: unknown[]) => void;
    args[callbackAt] = (error: unknown, ...rest: unknown[]) => {
      ended(span, error);
      callback(error, ...rest);
    };
    return query.apply(self, args);
  }
  let result: unknown;
  try {
    result = query.apply(self, args);
  } catch (error) {
    ended(span, error);
    throw error;
  }
  if (result && typeof (result as Promise<unknown>).then === 'function') {
    (result as Promise<unknown>).then(
      () => ended(span),
      (error: unknown) => ended(span, error),
    );
  } else if (result && typeof (result as { once?: unknown }).once === 'function') {
    const submittable = result as { once(event: string, listener: (error?: unknown) => void): void };
    submittable.once('end', () => ended(span));
    submittable.once('error', (error) => ended(span, error));
  } else ended(span);
  return result;
};

/** Wraps one `pg` client's `query`: the queries of a client checked out of the pool (transactions). */
export const traceQueries = (client: { query: Query }, database?: string): void => {
  const query = client.query;
  client.query = function tracedQuery(this: unknown, ...args: unknown[]) {
    const config = args[0];
    if (config && typeof config === 'object' && POOLED in config) return query.apply(this, args);
    return traced(query, this, args, database);
  };
};

/**
 * Traces a `pg` pool's queries: `pool.query` at the call, in the caller's context (the pool runs the
 * statement on a client from a callback in whichever request released it, which is another trace),
 * and each client's own queries (`traceQueries`, from the pool's `connect` event).
 */
export const tracePool = (
  pool: {
    query: Query;
    on(event: 'connect', listener: (client: { query: Query; database?: string }) => void): unknown;
  },
  database?: string,
): void => {
  pool.on('connect', (client) => traceQueries(client, database ?? client.database));
  const query = pool.query;
  pool.query = function tracedPoolQuery(this: unknown, ...args: unknown[]) {
    const config = args[0];
    // the statement as a config object of its own, marked so the client's wrapper lets it pass
    if (typeof config === 'string')
      args.splice(
        0,
        2,
        { text: config, values: Array.isArray(args[1]) ? args[1] : undefined, [POOLED]: true },
        ...(typeof args[1] === 'function' ? [args[1]] : []),
      );
    else if (config && typeof config === 'object') args[0] = { ...(config as object), [POOLED]: true };
    return traced(query, this, args, database);
  };
};

interface RedisCommandContext {
  command?: string;
  [SPAN]?: Span;
}

/**
 * Spans for ioredis commands, from the trace events ioredis publishes itself (the diagnostics channel
 * `ioredis:command`, once per command however often it is resent): every connection in the process,
 * a pipeline's or `MULTI`'s commands too. The span is named by the command; keys and arguments are
 * not recorded. Returns the unsubscribe.
 */
export const traceRedisCommands = (): (() => void) => {
  const channel = tracingChannel<RedisCommandContext>('ioredis:command');
  const handlers = {
    start: (message: RedisCommandContext) => {
      if (!inTrace() || typeof message.command !== 'string') return;
      message[SPAN] = tracer.startSpan(SPANS.redisCommand(message.command), {
        kind: SpanKind.CLIENT,
        attributes: { [ATTRS.dbSystem]: 'redis', [ATTRS.dbOperation]: message.command.toUpperCase() },
      });
    },
    end: () => {},
    asyncStart: () => {},
    asyncEnd: (message: RedisCommandContext) => {
      if (message[SPAN]) ended(message[SPAN]);
    },
    error: (message: RedisCommandContext & { error?: unknown }) => {
      const span = message[SPAN];
      if (!span) return;
      // a promise's rejection publishes `error` and then `asyncEnd`: record it, `asyncEnd` ends the span
      span.setStatus({ code: SpanStatusCode.ERROR, message: (message.error as Error)?.message ?? 'error' });
      span.setAttribute(ATTRS.errorType, (message.error as Error)?.name ?? 'error');
    },
  };
  channel.subscribe(handlers);
  return () => channel.unsubscribe(handlers);
};
