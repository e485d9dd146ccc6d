import { TOPICS } from '@grantline/events';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { encodeEvent } from '../src/codec.ts';
import { handleKafkaBatch } from '../src/kafka-batches.ts';
import { OffsetCommits } from '../src/kafka-offsets.ts';
import type { SubscriptionOptions } from '../src/port.ts';
import { recorded } from './contract.ts';

/** `OrganisationConnected` (o) and `OrganisationDisconnected` (d) messages of one grant, offsets 0, 1, ... */
const messages = (kinds: string): KafkaMessage[] =>
  [...kinds].map((kind, offset) => {
    const event = recorded('grant-1', offset + 1);
    const { message } = encodeEvent(kind === 'd' ? { ...event, type: 'OrganisationDisconnected' } : event);
    // as kafkajs hands them over: key, value and each header a Buffer
    const headers = Object.fromEntries(
      Object.entries(message.headers ?? {}).map(([k, v]) => [k, Buffer.from(String(v))]),
    );
    return {
      key: Buffer.from(String(message.key)),
      value: Buffer.from(String(message.value)),
      headers,
      offset: String(offset),
      timestamp: '0',
      attributes: 0,
    } as KafkaMessage;
  });

/** one kafkajs batch through `handleKafkaBatch`: what it did, in order, and what it committed */
const consume = async (batch: KafkaMessage[], subscriber: Partial<SubscriptionOptions>) => {
  const seen = {
    log: [] as string[],
    heartbeats: 0,
    committed: [] as unknown[],
    error: undefined as unknown,
  };
  const commits = new OffsetCommits(new Set(), 1_000, () => {});
  const payload = {
    batch: { topic: TOPICS.grants, partition: 0, highWatermark: String(batch.length), messages: batch },
    resolveOffset: (offset: string) => seen.log.push(`resolved ${offset}`),
    heartbeat: async () => {
      seen.heartbeats++;
    },
    commitOffsetsIfNecessary: async (offsets: unknown) => {
      seen.committed.push(offsets);
    },
    isRunning: () => true,
    isStale: () => false,
  } as unknown as EachBatchPayload;
  await handleKafkaBatch(
    async () => {},
    {
      groupId: 'g',
      topics: [TOPICS.grants],
      onCrash: () => {},
      handlerAttempts: 1,
      handle: async (e) => {
        seen.log.push(`handled ${e.streamVersion}`);
      },
      ...subscriber,
    } as SubscriptionOptions,
    commits,
    payload,
  ).catch((error: unknown) => {
    seen.error = error;
  });
  return seen;
};

const committedAt = (offset: string) => ({
  topics: [{ topic: TOPICS.grants, partitions: [{ partition: 0, offset }] }],
});

describe('a Kafka batch through a subscription of a few types', () => {
  it('passes over each run of other events in one step: one offset and one heartbeat per handled event', async () => {
    // 0-2 other, 3 named, 4-7 other, 8 named, 9-11 other
    const seen = await consume(messages('ooodoooodooo'), { types: ['OrganisationDisconnected'] });
    // each offset resolved after its event is handled (with the others before it), then once for the
    // trailing others
    expect(seen.log).toEqual(['handled 4', 'resolved 3', 'handled 9', 'resolved 8', 'resolved 11']);
    expect(seen.heartbeats).toBe(3);
    // the batch's end is committed: the group resumes after the trailing others
    expect(seen.committed).toEqual([committedAt('12')]);
  });

  it('hands every event over, one by one, to a subscription of all types', async () => {
    const seen = await consume(messages('odo'), {});
    expect(seen.log).toEqual([
      'handled 1',
      'resolved 0',
      'handled 2',
      'resolved 1',
      'handled 3',
      'resolved 2',
    ]);
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
    expect(seen.log).toEqual(['resolved 5']);
  });

  it('passes a batch of other events over whole: nothing handled, the last offset resolved once', async () => {
    const seen = await consume(messages('o'.repeat(200)), { types: ['OrganisationDisconnected'] });
    expect(seen.log).toEqual(['resolved 199']);
    expect(seen.heartbeats).toBe(1);
  });

  it('commits up to the last event handled when a handler fails for now, never past the one that failed', async () => {
    const handled: number[] = [];
    const seen = await consume(messages('ooodoooodooo'), {
      types: ['OrganisationDisconnected'],
      handle: async (e) => {
        if (e.streamVersion === 9) throw Object.assign(new Error('database away'), { retriable: true });
        handled.push(e.streamVersion);
      },
    });
    expect((seen.error as Error).message).toBe('database away');
    expect(handled).toEqual([4]);
    expect(seen.log).toEqual(['resolved 3']);
    // resumes at the first of the others before the failed event: it is read again, nothing is lost
    expect(seen.committed).toEqual([committedAt('4')]);
  });
});
