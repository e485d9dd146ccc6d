// Topics with several partitions on the real broker: the count given at creation is the count the
// broker holds, each stream (the message key) stays in one partition, and two consumers of one
// group, each with its share of the partitions, still see every stream in order.
import { randomUUID } from 'node:crypto';
import { TOPICS } from '@grantline/events';
import { eventually, uniqueName } from '@grantline/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KafkaMessageBus } from '../src/kafka.ts';
import type { ConsumedEvent, Subscription } from '../src/port.ts';
import { recorded } from './contract.ts';

const PARTITIONS = 4;
const noCrash = (e: Error) => {
  throw e;
};

describe('Kafka topics with a configured partition count', () => {
  const prefix = `${uniqueName('parts')}.`;
  let bus: KafkaMessageBus;
  beforeAll(async () => {
    bus = new KafkaMessageBus({
      brokers: inject('infra').kafkaBrokers,
      clientId: 'partitions',
      logger: pino({ level: 'silent' }),
      topicPrefix: prefix,
    });
    await bus.ensureTopics([{ topic: TOPICS.grants, partitions: PARTITIONS }]);
  });
  afterAll(async () => {
    await bus?.close();
  });

  it('creates the topic with that many partitions', async () => {
    const admin = bus.kafka.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [`${prefix}${TOPICS.grants}`] });
      expect(topics[0]!.partitions).toHaveLength(PARTITIONS);
    } finally {
      await admin.disconnect();
    }
  });

  it('keeps each stream in one partition and in order, across the consumers of one group', async () => {
    const streams = Array.from({ length: 12 }, () => `grant-${randomUUID()}`);
    const versions = 8;
    const groupId = uniqueName('parts');
    const seen: ConsumedEvent[] = [];
    const subscriptions: Subscription[] = [];
    for (let i = 0; i < 2; i++)
      subscriptions.push(
        await bus.subscribe({
          groupId,
          topics: [TOPICS.grants],
          onCrash: noCrash,
          handle: async (e) => {
            if (streams.includes(e.subject)) seen.push(e);
          },
        }),
      );
    try {
      // interleaved, in several batches: version v of every stream, then v + 1
      for (let v = 1; v <= versions; v++) await bus.publish(streams.map((s) => recorded(s, v)));
      await eventually(() => (seen.length >= streams.length * versions ? true : undefined), {
        timeoutMs: 60_000,
        what: 'every event',
      });
      const partitionsUsed = new Set<number>();
      for (const stream of streams) {
        const mine = seen.filter((e) => e.subject === stream);
        expect(mine.map((e) => e.streamVersion)).toEqual(Array.from({ length: versions }, (_, i) => i + 1));
        const partitions = new Set(mine.map((e) => e.partition));
        expect(partitions.size, stream).toBe(1);
        partitionsUsed.add([...partitions][0]!);
      }
      // twelve random keys over four partitions: more than one is used (all in one: about 1 in 2 million)
      expect(partitionsUsed.size).toBeGreaterThan(1);
    } finally {
      await Promise.all(subscriptions.map((s) => s.stop()));
    }
  });
});
