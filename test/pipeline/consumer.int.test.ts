import { randomUUID } from 'node:crypto';
import { deadLetterTopic, TOPICS } from '@grantline/events';
import { type ConsumedEvent, consumerLag } from '@grantline/message-bus';
import { eventually, spawnScript, uniqueName } from '@grantline/testing';
import type { IHeaders } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPipeline, orgConnected } from './harness.ts';

describe('consumer runtime on Kafka', () => {
  let p: Awaited<ReturnType<typeof createPipeline>>;
  beforeAll(async () => {
    p = await createPipeline(inject('infra'));
  });
  afterAll(() => p?.close());

  const publishValid = async (n: number) => {
    const stream = `grant-${randomUUID()}`;
    const { events } = await p.store.append(
      stream,
      'no_stream',
      Array.from({ length: n }, (_, i) => orgConnected(stream, `org-${i}`)),
    );
    await p.bus.publish(events);
    return { stream, events };
  };

  const produceRaw = async (messages: { value: string; headers: IHeaders }[]) => {
    const producer = p.bus.kafka.producer();
    await producer.connect();
    await producer.send({
      topic: p.bus.topic(TOPICS.grants),
      messages: messages.map((m) => ({ key: 'k', ...m })),
    });
    await producer.disconnect();
  };

  const validHeaders = (ceType = 'dev.grantline.OrganisationConnected.v1'): IHeaders => ({
    ce_specversion: '1.0',
    ce_id: randomUUID(),
    ce_source: '/test',
    ce_type: ceType,
    ce_subject: 'grant-x',
    ce_streamversion: '1',
    ce_time: new Date().toISOString(),
  });

  it('parks malformed messages on the dead-letter topic with the reason, and carries on', async () => {
    const groupId = uniqueName('dlq');
    const seen: ConsumedEvent[] = [];
    await produceRaw([
      { value: 'not json', headers: validHeaders() },
      { value: '{"grantId":"g","organisationId":"o"}', headers: validHeaders('dev.grantline.Unheard.v1') },
      { value: '{"grantId":"g"}', headers: validHeaders() },
      { value: '{"grantId":"g","organisationId":"o"}', headers: { ce_specversion: '1.0' } },
      // a known type this subscription does not handle: passed over by its header, never opened
      { value: 'not json either', headers: validHeaders('dev.grantline.GrantRevoked.v1') },
    ]);
    const { stream } = await publishValid(1);
    const sub = await p.bus.subscribe({
      groupId,
      topics: [TOPICS.grants],
      // a typed subscription, as every service's: the filter by type header lets nothing malformed
      // of a wanted, unknown or missing type through undecoded
      types: ['OrganisationConnected'],
      onCrash: (e) => {
        throw e;
      },
      handle: async (e) => {
        seen.push(e);
      },
    });
    try {
      await eventually(() => (seen.some((e) => e.subject === stream) ? true : undefined), {
        what: 'the valid event',
      });
      const parked = await readDeadLetters(4);
      expect(parked).toHaveLength(4);
      const reasons = parked.map((m) => m.headers['x-grantline-dlq-reason']);
      expect(reasons).toEqual([
        'MalformedMessageError: value is not JSON',
        'MalformedMessageError: invalid event "dev.grantline.Unheard.v1": unknown event type',
        'MalformedMessageError: invalid event "dev.grantline.OrganisationConnected.v1": organisationId: Invalid input: expected string, received undefined',
        'MalformedMessageError: missing header ce_type',
      ]);
      expect(parked.every((m) => m.headers['x-grantline-dlq-consumer'] === groupId)).toBe(true);
      expect(parked[0]!.value).toBe('not json');
    } finally {
      await sub.stop();
    }
  });

  const readDeadLetters = async (expected: number) => {
    const consumer = p.bus.kafka.consumer({ groupId: uniqueName('dlq-reader'), maxWaitTimeInMs: 100 });
    const out: { value: string; headers: Record<string, string> }[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: p.bus.topic(deadLetterTopic(TOPICS.grants)), fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const headers = Object.fromEntries(
          Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
        );
        out.push({ value: message.value?.toString() ?? '', headers });
      },
    });
    await eventually(() => (out.length >= expected ? true : undefined), { what: `${expected} dead letters` });
    await consumer.disconnect();
    return out;
  };

  it('dead-letters an event its handler keeps rejecting, after retries, and handles the next one', async () => {
    const { events } = await publishValid(3);
    const attempts = new Map<string, number>();
    const handled: string[] = [];
    const poison = events[1]!.id;
    const sub = await p.bus.subscribe({
      groupId: uniqueName('reject'),
      topics: [TOPICS.grants],
      onCrash: (e) => {
        throw e;
      },
      handle: async (e) => {
        if (!events.some((x) => x.id === e.id)) return;
        attempts.set(e.id, (attempts.get(e.id) ?? 0) + 1);
        if (e.id === poison) throw new TypeError('cannot project this event');
        handled.push(e.id);
      },
    });
    try {
      await eventually(() => (handled.length === 2 ? true : undefined), { what: 'both good events' });
      expect(handled).toEqual([events[0]!.id, events[2]!.id]);
      expect(attempts.get(poison)).toBe(3);
    } finally {
      await sub.stop();
    }
  });

  it('commits offsets only for handled messages: a restarted consumer resumes at the one that failed', async () => {
    const { events } = await publishValid(5);
    const groupId = uniqueName('resume');
    const firstRun: string[] = [];
    let crashed: Error | undefined;
    const ours = (e: ConsumedEvent) => events.some((x) => x.id === e.id);
    const first = await p.bus.subscribe({
      groupId,
      topics: [TOPICS.grants],
      handlerAttempts: 1,
      onCrash: (e) => {
        crashed = e;
      },
      handle: async (e) => {
        if (!ours(e)) return;
        if (e.streamVersion === 4)
          throw Object.assign(new Error('database unavailable'), { retriable: true });
        firstRun.push(e.id);
      },
    });
    await eventually(() => crashed, { timeoutMs: 60_000, what: 'the consumer to give up' });
    await first.stop();
    expect(firstRun).toEqual(events.slice(0, 3).map((e) => e.id));

    const secondRun: string[] = [];
    const second = await p.bus.subscribe({
      groupId,
      topics: [TOPICS.grants],
      onCrash: (e) => {
        throw e;
      },
      handle: async (e) => {
        if (ours(e)) secondRun.push(e.id);
      },
    });
    try {
      await eventually(() => (secondRun.length >= 2 ? true : undefined), { what: 'the remaining events' });
      expect(secondRun).toEqual(events.slice(3).map((e) => e.id));
      const lag = [...consumerLag()].filter(([key]) => key.startsWith(`${groupId}/`));
      expect(lag).toEqual([[`${groupId}/${p.bus.topic(TOPICS.grants)}/0`, 0]]);
    } finally {
      await second.stop();
    }
  });

  it('ends the process with a non-zero code when the consumer crashes, instead of hanging', async () => {
    await publishValid(1);
    const crashing = spawnScript('test/pipeline/crashing-consumer.ts', {
      KAFKA_BROKERS: inject('infra').kafkaBrokers.join(','),
      TOPIC_PREFIX: p.topicPrefix,
    });
    const code = await crashing.exited;
    const output = crashing.output();
    expect(code).toBe(1);
    expect(output).toContain('unrecoverable failure; exiting');
  }, 120_000);
});
