import { systemClock } from '@grantline/clock';
import type { RecordedEvent } from '@grantline/events';
import type { MessageBus } from '@grantline/message-bus';
import { MemoryRevocationCache } from '@grantline/revocation-cache';
import type { Logger } from '@grantline/telemetry';
import { eventually } from '@grantline/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { FactLog, FactMessage } from '../src/projections/facts.ts';
import { RevocationPublisher, type StreamItem } from '../src/publisher.ts';

const fact: FactMessage = {
  key: 'jti:j1',
  kind: 'token',
  jti: 'j1',
  revokedAt: new Date().toISOString(),
  expiresAt: new Date(Date.now() + 600_000).toISOString(),
  sequence: 1,
};

/**
 * A heartbeat tells subscribers that every fact recorded before it reached them: so none may go out
 * while the facts cannot be published (F4: heartbeats must not vouch for a deny-list that lacks a fact).
 */
describe('revocation heartbeats', () => {
  let publisher: RevocationPublisher | undefined;
  afterEach(() => publisher?.stop());

  it('are not sent while a publication pass fails, and follow the facts published before them once it works', async () => {
    let failing = true;
    let unpublished = [fact];
    const sent: RecordedEvent[] = [];
    const facts = {
      lastSequence: async () => 0,
      liveRevocations: async () => [],
      publish: async (send: (f: FactMessage[]) => Promise<void>) => {
        if (failing) throw new Error('Postgres unreachable');
        const batch = unpublished;
        unpublished = [];
        if (batch.length) await send(batch);
        return batch.length;
      },
      publishedAfter: async (sequence: number) => (failing || sequence >= 1 ? [] : [fact]),
    } as unknown as FactLog;
    const bus = { publish: async (events: RecordedEvent[]) => void sent.push(...events) } as MessageBus;
    const quiet = { warn: () => {}, info: () => {} } as unknown as Logger;
    const cache = new MemoryRevocationCache();
    publisher = new RevocationPublisher({
      bus,
      facts,
      cache: () => cache,
      logger: quiet,
      clock: systemClock,
      heartbeatMs: 50,
    });
    const items: StreamItem[] = [];
    publisher.listen((item) => items.push(item));
    await publisher.start();
    await new Promise((r) => setTimeout(r, 400));
    expect(items).toEqual([]);
    expect(sent).toEqual([]);

    failing = false;
    await eventually(() => (items.some((i) => i.type === 'heartbeat') ? true : undefined));
    expect(items[0]).toEqual({ type: 'fact', fact });
    expect(sent.map((e) => e.type)[0]).toBe('RevocationFact');
    expect(sent.some((e) => e.type === 'RevocationHeartbeat')).toBe(true);
    await cache.close();
  });

  it("sends a committed fact at once, not after the stream's pass under way", async () => {
    let releaseStream!: () => void;
    const streamHeld = new Promise<void>((r) => {
      releaseStream = r;
    });
    let unpublished: FactMessage[] = [];
    const sent: RecordedEvent[] = [];
    let streamPasses = 0;
    const facts = {
      lastSequence: async () => 0,
      liveRevocations: async () => [],
      publish: async (send: (f: FactMessage[]) => Promise<void>) => {
        const batch = unpublished;
        unpublished = [];
        if (batch.length) await send(batch);
        return { sent: batch.length, more: false };
      },
      // the stream's pass hangs (a slow read) until released
      publishedAfter: async () => {
        streamPasses++;
        await streamHeld;
        return [];
      },
    } as unknown as FactLog;
    const bus = { publish: async (events: RecordedEvent[]) => void sent.push(...events) } as MessageBus;
    const cache = new MemoryRevocationCache();
    publisher = new RevocationPublisher({
      bus,
      facts,
      cache: () => cache,
      logger: { warn: () => {}, info: () => {} } as unknown as Logger,
      clock: systemClock,
      heartbeatMs: 60_000,
    });
    await publisher.start();
    await eventually(() => (streamPasses > 0 ? true : undefined));
    unpublished = [fact];
    publisher.soon();
    await eventually(() => (sent.some((e) => e.type === 'RevocationFact') ? true : undefined));
    expect(streamPasses).toBe(1);
    releaseStream();
    await cache.close();
  });
});
