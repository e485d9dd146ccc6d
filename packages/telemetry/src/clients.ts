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

/**
 * Wraps one `pg` client's `query` (a pool's clients: call it from the pool's `connect` event, which
 * covers `pool.query` too). A callback, a promise and a submittable (a cursor) are all traced to their
 * end. Parameter values are never recorded, only the statement's text.
 */
export const traceQueries = (client: { query: Query }, database?: string): void => {
  const query = client.query;
  client.query = function tracedQuery(this: unknown, ...args: unknown[]) {
    if (!inTrace()) return query.apply(this, args);
    const config = args[0];
    const text = typeof config === 'string' ? config : (config as { text?: string } | undefined)?.text;
    if (typeof text !== 'string') return query.apply(this, args);
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
      return query.apply(this, args);
    }
    let result: unknown;
    try {
      result = query.apply(this, args);
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
