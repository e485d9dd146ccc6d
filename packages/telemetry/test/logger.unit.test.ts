import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { REDACTED_PATHS } from '../src/logger.ts';

const capture = () => {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: pino({ redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, stream), lines };
};

describe('log redaction', () => {
  it('hides credentials wherever a request or form carries them', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        form: { code: 'the-code', client_secret: 's3cret', refresh_token: 'rt' },
        query: { code: 'the-code' },
        password: 'pw',
        req: { headers: { authorization: 'Bearer abc', cookie: 'grantline_session=x' } },
      },
      'request',
    );
    for (const secret of ['the-code', 's3cret', '"rt"', '"pw"', 'Bearer abc', 'grantline_session=x'])
      expect(lines.join()).not.toContain(secret);
  });

  it('keeps error codes, which say what went wrong', () => {
    const { logger, lines } = capture();
    logger.error({ err: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) }, 'failed');
    expect(lines.join()).toContain('ECONNREFUSED');
  });
});

describe('log lines and traces', () => {
  it('carry the active span’s trace and span ids, and none outside a span', async () => {
    const { createLogger, activeTraceparent, startTelemetry } = await import('../src/index.ts');
    const { trace } = await import('@opentelemetry/api');
    const telemetry = startTelemetry({ serviceName: 'logger-test' });
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = createLogger({ name: 'test', destination });
    let ids: { traceId: string; spanId: string } | undefined;
    let recording: boolean | undefined;
    let traceparent: string | undefined;
    trace.getTracer('test').startActiveSpan('work', (span) => {
      ids = span.spanContext();
      recording = span.isRecording();
      traceparent = activeTraceparent();
      logger.info({ extra: 0 }, 'inside');
      span.end();
    });
    // a trace its caller sent sampled is still recorded, and carried on sampled
    const sampled = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;
    let continued: { recording: boolean; traceparent: string | undefined } | undefined;
    const { context, propagation } = await import('@opentelemetry/api');
    context.with(propagation.extract(context.active(), { traceparent: sampled }), () =>
      trace.getTracer('test').startActiveSpan('continued', (span) => {
        continued = { recording: span.isRecording(), traceparent: activeTraceparent() };
        span.end();
      }),
    );
    logger.info({ extra: 1 }, 'outside');
    logger.info({ extra: 2 }, 'outside again');
    await telemetry.shutdown();
    const [inside, outside] = lines.map((l) => JSON.parse(l));
    expect(inside).toMatchObject({ msg: 'inside', trace_id: ids!.traceId, span_id: ids!.spanId });
    expect(inside.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(outside.trace_id).toBeUndefined();
    expect(lines.map((l) => JSON.parse(l).extra)).toEqual([0, 1, 2]);
    // nothing exports here, so the span records nothing, yet its context is carried on (unsampled)
    expect(recording).toBe(false);
    expect(traceparent).toBe(`00-${ids!.traceId}-${ids!.spanId}-00`);
    expect(continued?.recording).toBe(true);
    expect(continued?.traceparent).toMatch(new RegExp(`^00-${'ab'.repeat(16)}-[0-9a-f]{16}-01$`));
  });
});
