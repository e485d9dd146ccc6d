import { TOPICS } from '@grantline/events';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { encodeEvent } from '../src/codec.ts';
import { handleKafkaBatch } from '../src/kafka-batches.ts';
import { OffsetCommits } from '../src/kafka-offsets.ts';
import type { ConsumedEvent, SubscriptionOptions } from '../src/port.ts';
import { recorded } from './contract.ts';

/** `OrganisationConnected` (o) and `OrganisationDisconnected` (d) messages of one grant, offsets 0, 1, ... */
const messages = (kinds: string): KafkaMessage[] =>
  [...kinds].map((kind, offset) => {
    const event = recorded('grant-1', offset + 1);
    const { message } = encodeEvent(kind === 'd' ? { ...event, type: 'OrganisationDisconnected' } : event);
    return { ...message, offset: String(offset), timestamp: '0', attributes: 0 } as KafkaMessage;
  });

/** one kafkajs batch through `handleKafkaBatch`, recording what it handled, resolved and heartbeat */
const consume = async (batch: KafkaMessage[], subscriber: Partial<SubscriptionOptions>) => {
  const seen = {
    handled: [] as string[],
    resolved: [] as string[],
    heartbeats: 0,
    committed: [] as unknown[],
  };
  const commits = new OffsetCommits(new Set(), 1_000, () => {});
  const payload = {
    batch: { topic: TOPICS.grants, partition: 0, highWatermark: String(batch.length), messages: batch },
    resolveOffset: (offset: string) => seen.resolved.push(offset),
    heartbeat: async () => {
      seen.heartbeats++;
    },
    commitOffsetsIfNecessary: async (offsets: unknown) => {
      seen.committed.push(offsets);
    },
    isRunning: () => true,
    isStale: () => false,
  } as unknown as EachBatchPayload;
  const record = (e: ConsumedEvent) => seen.handled.push(`${e.type} ${e.streamVersion}`);
  await handleKafkaBatch(
    async () => {},
    {
      groupId: 'g',
      topics: [TOPICS.grants],
      onCrash: () => {},
      handle: async (e) => {
        record(e);
      },
      ...subscriber,
    } as SubscriptionOptions,
    commits,
    payload,
  );
  return seen;
};

describe('a Kafka batch through a subscription of a few types', () => {
  it('passes over each run of other events in one step: one offset and one heartbeat per handled event', async () => {
    // 0-2 other, 3 named, 4-7 other, 8 named, 9-11 other
    const seen = await consume(messages('ooodoooodooo'), { types: ['OrganisationDisconnected'] });
    expect(seen.handled).toEqual(['OrganisationDisconnected 4', 'OrganisationDisconnected 9']);
    // resolved after each handled event (with the others before it), then once for the trailing others
    expect(seen.resolved).toEqual(['3', '8', '11']);
    expect(seen.heartbeats).toBe(3);
    // the batch's end is committed: the group resumes after the trailing others
    expect(seen.committed).toEqual([
      { topics: [{ topic: TOPICS.grants, partitions: [{ partition: 0, offset: '12' }] }] },
    ]);
  });

  it('hands every event over, one by one, to a subscription of all types', async () => {
    const seen = await consume(messages('odo'), {});
    expect(seen.handled).toEqual([
      'OrganisationConnected 1',
      'OrganisationDisconnected 2',
      'OrganisationConnected 3',
    ]);
    expect(seen.resolved).toEqual(['0', '1', '2']);
  });

  it('gathers the named events of a subscriber that handles several at once, across the others', async () => {
    const runs: string[][] = [];
    const seen = await consume(messages('dododo'), {
      types: ['OrganisationDisconnected'],
      handleMany: async (events) => {
        runs.push(events.map((e) => String(e.streamVersion)));
      },
    });
    expect(runs).toEqual([['1', '3', '5']]);
    expect(seen.resolved).toEqual(['5']);
  });

  it('passes a batch of other events over whole: nothing handled, the last offset resolved once', async () => {
    const seen = await consume(messages('o'.repeat(200)), { types: ['OrganisationDisconnected'] });
    expect(seen.handled).toEqual([]);
    expect(seen.resolved).toEqual(['199']);
    expect(seen.heartbeats).toBe(1);
  });
});
