import { isRetriable, withRetry } from '@grantline/event-store';
import { ATTRS, SPANS } from '@grantline/telemetry';
import { context, propagation, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { decodeEvent, wantedBy } from './codec.ts';
import type { OffsetCommits } from './kafka-offsets.ts';
import { headersAsStrings, instruments, lag, tracer } from './kafka-telemetry.ts';
import type { SubscriptionOptions } from './port.ts';
import { handledTogether, MANY_AT_MOST } from './together.ts';

/** Parks a message its handler refused for good on the topic's dead-letter topic. */
export type DeadLetter = (
  groupId: string,
  topic: string,
  partition: number,
  message: KafkaMessage,
  error: Error,
) => Promise<void>;

/**
 * One kafkajs batch (one partition): the wanted messages handled in order (by `handleMany` in runs of
 * up to `MANY_AT_MOST` when the subscriber has it, else one by one), each run's offsets (with those
 * of the unwanted messages before it) resolved after it and committed as `OffsetCommits` decides.
 */
export const handleKafkaBatch = async (
  deadLetter: DeadLetter,
  options: SubscriptionOptions,
  commits: OffsetCommits,
  payload: EachBatchPayload,
): Promise<void> => {
  const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale } = payload;
  const lagKey = `${options.groupId}/${batch.topic}/${batch.partition}`;
  const attributes = {
    [ATTRS.consumer]: options.groupId,
    [ATTRS.topic]: batch.topic,
    [ATTRS.partition]: batch.partition,
  };
  const wanted = wantedBy(options.types);
  const run = options.handleMany ? MANY_AT_MOST : 1;
  let handled: string | undefined;
  // one attempt in the group's current generation, as kafkajs's own commit after a batch (its
  // consumer.commitOffsets retries for up to a minute, which no batch or stop may wait for)
  commits.committer = (offsets) => commitOffsetsIfNecessary(offsets);
  try {
    const { messages } = batch;
    for (let i = 0; i < messages.length; ) {
      if (!isRunning() || isStale()) break;
      // the next window: up to `run` wanted messages and every unwanted one before and between them,
      // passed over together (a subscriber of a few types skips a topic's run of other events at the
      // cost of one header read each, not a handling step, an offset and a heartbeat each)
      const chosen: KafkaMessage[] = [];
      let end = i;
      while (end < messages.length && chosen.length < run) {
        const message = messages[end++]!;
        if (wanted(message.headers)) chosen.push(message);
      }
      i = end;
      if (chosen.length > 1) await handleTogether(deadLetter, options, batch.topic, batch.partition, chosen);
      else if (chosen[0]) await handleMessage(deadLetter, options, batch.topic, batch.partition, chosen[0]);
      const last = messages[end - 1]!;
      resolveOffset(last.offset);
      handled = last.offset;
      lag.set(lagKey, {
        value: Math.max(0, Number(batch.highWatermark) - Number(last.offset) - 1),
        attributes,
      });
      await heartbeat();
    }
  } catch (error) {
    // what was handled before the failure, in this batch and before it, is committed at once: a
    // restart resumes at the failed message
    if (handled !== undefined && !isStale()) commits.handled(batch.topic, batch.partition, handled);
    await commits.flush();
    throw error;
  }
  if (handled === undefined || isStale()) return;
  commits.handled(batch.topic, batch.partition, handled);
  // an awaited topic now; the others when due, or when this batch is the last before a stop
  if (commits.due(batch.topic) || !isRunning()) await commits.flush();
};

const consumeSpan = (topic: string, message: KafkaMessage) => {
  const parent = propagation.extract(context.active(), headersAsStrings(message.headers));
  return { parent, span: tracer.startSpan(SPANS.consume(topic), { kind: SpanKind.CONSUMER }, parent) };
};

/**
 * Several messages through `handleMany` in one call, each with its consume span in its own trace. A
 * run that cannot be decoded or handled as a whole goes one by one, which finds the message at fault.
 */
const handleTogether = async (
  deadLetter: DeadLetter,
  options: SubscriptionOptions,
  topic: string,
  partition: number,
  messages: readonly KafkaMessage[],
): Promise<void> => {
  let spans: Span[] = [];
  let failure: string | undefined;
  let together = false;
  try {
    const events = messages.map((m) => decodeEvent(topic, partition, m));
    spans = messages.map((m, i) => {
      const { span } = consumeSpan(topic, m);
      span.setAttribute(ATTRS.eventType, events[i]!.type);
      span.setAttribute(ATTRS.consumer, options.groupId);
      return span;
    });
    together = await handledTogether(options, events);
    if (!together) failure = 'rejected as a run: handled one by one';
  } catch (error) {
    // a retriable failure propagates; a message that does not decode is parked one by one below
    failure = (error as Error).message;
    if (isRetriable(error)) throw error;
  } finally {
    for (const span of spans) {
      if (failure !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: failure });
      span.end();
    }
  }
  if (together) {
    instruments().processed.add(messages.length, { [ATTRS.consumer]: options.groupId, [ATTRS.topic]: topic });
    return;
  }
  for (const message of messages) await handleMessage(deadLetter, options, topic, partition, message);
};

const handleMessage = async (
  deadLetter: DeadLetter,
  options: SubscriptionOptions,
  topic: string,
  partition: number,
  message: KafkaMessage,
): Promise<void> => {
  const { parent, span } = consumeSpan(topic, message);
  try {
    await context.with(trace.setSpan(parent, span), async () => {
      const event = decodeEvent(topic, partition, message);
      span.setAttribute(ATTRS.eventType, event.type);
      span.setAttribute(ATTRS.consumer, options.groupId);
      // Transient failures get a few quick retries here; a retriable one that persists propagates
      // (kafkajs restarts, then crashes: `onCrash`), anything else is dead-lettered below.
      await withRetry(() => options.handle(event), {
        attempts: options.handlerAttempts ?? 3,
        retryOn: () => true,
      });
    });
    instruments().processed.add(1, { [ATTRS.consumer]: options.groupId, [ATTRS.topic]: topic });
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    if (isRetriable(error)) throw error;
    await deadLetter(options.groupId, topic, partition, message, error as Error);
  } finally {
    span.end();
  }
};
