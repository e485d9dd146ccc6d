import { randomUUID } from 'node:crypto';
import { GroupCommit } from '@grantline/event-store';
import { TOPICS } from '@grantline/events';
import { startTelemetry } from '@grantline/telemetry';
import { trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPipeline, orgConnected } from './harness.ts';

describe('W3C trace context from a command to its consumers', () => {
  const telemetry = startTelemetry({ serviceName: 'trace-test' });
  let p: Awaited<ReturnType<typeof createPipeline>>;
  beforeAll(async () => {
    p = await createPipeline(inject('infra'));
  });
  afterAll(async () => {
    await p?.close();
    await telemetry.shutdown();
  });

  it('records the active span with the event and carries it in the Kafka headers to the consumer', async () => {
    const stream = `grant-${randomUUID()}`;
    const span = trace.getTracer('test').startSpan('disconnect organisation');
    const traceId = span.spanContext().traceId;
    await trace.getTracer('test').startActiveSpan('command', async (command) => {
      await p.store.append(stream, 'no_stream', [orgConnected(stream, 'org-1')]);
      command.end();
    });
    span.end();
    const [stored] = (await p.store.readStream(stream)).events;
    expect(stored!.metadata.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    const commandTraceId = stored!.metadata.traceparent!.split('-')[1];
    expect(commandTraceId).not.toBe(traceId); // the command's own trace, not an unrelated span's

    p.relay().start();
    const received = await p.readTopic(TOPICS.grants, 1);
    const event = received.find((e) => e.subject === stream);
    expect(event?.traceparent).toBe(stored!.metadata.traceparent);
  });

  it('keeps each caller its own trace context when a group commit writes their events together', async () => {
    const group = new GroupCommit(p.store, { maxInFlight: 1 });
    const tracer = trace.getTracer('test');
    const streams = [`grant-${randomUUID()}`, `grant-${randomUUID()}`, `grant-${randomUUID()}`];
    const traceIds = await Promise.all(
      streams.map((stream) =>
        tracer.startActiveSpan('issue', async (span) => {
          await group.append(stream, orgConnected(stream, 'org-1'));
          span.end();
          return span.spanContext().traceId;
        }),
      ),
    );
    expect(new Set(traceIds).size).toBe(3);
    for (const [i, stream] of streams.entries()) {
      const [event] = (await p.store.readStream(stream)).events;
      expect(event!.metadata.traceparent?.split('-')[1]).toBe(traceIds[i]);
    }
  });
});
