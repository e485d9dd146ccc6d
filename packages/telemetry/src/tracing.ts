import {
  type Attributes,
  context,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';

const tracer = trace.getTracer('@grantline/telemetry');

/** The active span's W3C `traceparent`, to record with something that outlives the request. */
export const activeTraceparent = (): string | undefined => {
  const carrier: { traceparent?: string } = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
};

/** W3C trace context from request or message headers (a context without a span when they carry none). */
export const extractTraceContext = (headers: Record<string, string | string[] | undefined>) =>
  propagation.extract(ROOT_CONTEXT, headers);

/** Runs `work` in `span`, recording a thrown error on it, and ends it. */
export const inSpan = async <T>(span: Span, work: () => Promise<T>): Promise<T> => {
  try {
    return await context.with(trace.setSpan(context.active(), span), work);
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    throw error;
  } finally {
    span.end();
  }
};

/**
 * Runs `work` in a span that continues the trace recorded in `traceparent` (a flow's trace carried
 * through the browser in its signed statements) and links to the span that is active now (the HTTP
 * request that brought it back). Without a valid recorded trace context the span is a plain child of
 * the active one. Events appended within carry the continued trace to their consumers (docs/adr/0003).
 */
export const continueTrace = <T>(
  name: string,
  traceparent: string | undefined,
  work: () => Promise<T>,
  attributes?: Attributes,
): Promise<T> => {
  const recorded = traceparent ? trace.getSpanContext(extractTraceContext({ traceparent })) : undefined;
  const current = trace.getActiveSpan()?.spanContext();
  if (!recorded || (current && current.traceId === recorded.traceId))
    return inSpan(tracer.startSpan(name, attributes ? { attributes } : {}), work);
  const links: Link[] = current ? [{ context: current }] : [];
  const span = tracer.startSpan(
    name,
    { links, ...(attributes && { attributes }) },
    trace.setSpanContext(context.active(), recorded),
  );
  return inSpan(span, work);
};
