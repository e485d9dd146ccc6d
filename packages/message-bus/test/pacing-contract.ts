import { randomUUID } from 'node:crypto';
import { TOPICS } from '@grantline/events';
import { eventually, uniqueName } from '@grantline/testing';
import { describe, expect, it } from 'vitest';
import type { MessageBus } from '../src/port.ts';
import { recorded } from './contract.ts';

const revoked = (clientId: string, n: number) => ({
  ...recorded(`token-${clientId}-${n}`, 1),
  type: 'TokenRevoked',
  data: { tokenId: `jti-${n}`, tokenType: 'access_token', clientId },
});

/**
 * `pacedMs`, on every adapter: Kafka's broker holds a paced fetch; the in-process bus reads its log
 * at most once a pace however often a publication wakes it.
 */
export const pacingContract = (adapter: string, bus: () => MessageBus) =>
  describe(`MessageBus pacing: ${adapter}`, () => {
    it('paces a subscription: events written every 10 ms reach it in a few fetches, none later than the pace', async () => {
      const clientId = `client-${randomUUID()}`;
      const arrivals: { at: number; count: number }[] = [];
      const subscription = await bus().subscribe({
        groupId: uniqueName('paced'),
        topics: [TOPICS.tokens],
        // from the beginning (other tests' events are filtered out by client id): an event published
        // before the group has joined is not missed
        pacedMs: 250,
        onCrash: (e) => {
          throw e;
        },
        handle: async (e) => {
          if ((e.data as { clientId?: string }).clientId === clientId)
            arrivals.push({ at: Date.now(), count: 1 });
        },
        handleMany: async (events) => {
          const ours = events.filter((e) => (e.data as { clientId?: string }).clientId === clientId);
          if (ours.length > 0) arrivals.push({ at: Date.now(), count: ours.length });
        },
      });
      try {
        // joined and fetching
        await bus().publish([revoked(clientId, 0)]);
        await eventually(() => (arrivals.length === 1 ? true : undefined), { what: 'the first event' });
        const sent = Date.now();
        await bus().publish([revoked(clientId, 1)]);
        await eventually(() => (arrivals.length === 2 ? true : undefined), { what: 'the second event' });
        // held about the pace at most (the fetch under way answers when its 250 ms are up), with room
        // for a loaded machine
        expect(arrivals[1]!.at - sent).toBeLessThan(1_500);
        const began = Date.now();
        for (let n = 2; n <= 41; n++) {
          await bus().publish([revoked(clientId, n)]);
          await new Promise((r) => setTimeout(r, 10));
        }
        const publishing = Date.now() - began;
        await eventually(() => (arrivals.reduce((a, b) => a + b.count, 0) === 42 ? true : undefined), {
          what: 'all 42 events',
        });
        // 40 events over >= 400 ms, one fetch per 250 ms: one delivery per window they spanned, not 40
        const deliveries = arrivals.length - 2;
        expect(deliveries).toBeGreaterThanOrEqual(2);
        expect(deliveries).toBeLessThanOrEqual(Math.ceil(publishing / 250) + 2);
        expect(deliveries).toBeLessThan(20);
      } finally {
        await subscription.stop();
      }
    }, 60_000);
  });
