import { randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { migrate, pglitePool } from '@grantline/event-store';
import { deadLetterTopic, TOPICS } from '@grantline/events';
import { eventually, uniqueName } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessMessageBus } from '../src/in-process.ts';
import { messageBusContract, recorded } from './contract.ts';
import { pacingContract } from './pacing-contract.ts';

/** The embedded adapter of the message bus: its log and offsets in PGlite, in process. */
const pool = pglitePool(new PGlite());
const bus = new InProcessMessageBus({ pool, logger: { warn: () => {} } });
beforeAll(async () => {
  await migrate(pool, 'consent');
  await bus.ensureTopics([{ topic: TOPICS.revocations, compacted: true }]);
});
afterAll(async () => {
  await bus.close();
  await pool.end();
});

messageBusContract(
  'in-process (PGlite)',
  () => bus,
  () => ({ pool, schema: 'consent' }),
);
pacingContract('in-process (PGlite)', () => bus);

describe('in-process bus: dead letters', () => {
  it('parks a message its handler rejects for good on the dead-letter topic, with the reason', async () => {
    const stream = `grant-${randomUUID()}`;
    const sub = await bus.subscribe({
      groupId: uniqueName('dlq'),
      topics: [TOPICS.grants],
      onCrash: (e) => {
        throw e;
      },
      handle: async (e) => {
        if (e.subject === stream) throw new TypeError('cannot handle this one');
      },
    });
    try {
      await bus.publish([
        {
          id: randomUUID(),
          type: 'OrganisationConnected',
          data: { grantId: stream, organisationId: 'org-1' },
          streamId: stream,
          streamVersion: 1,
          position: '1',
          time: new Date(),
          source: '/grantline/test',
          metadata: {},
        },
      ]);
      const parked = await eventually(async () => {
        const { rows } = await pool.query<{ key: string; headers: Record<string, string> }>(
          `SELECT key, headers FROM bus.messages WHERE topic = $1 AND key = $2`,
          [deadLetterTopic(TOPICS.grants), stream],
        );
        return rows[0];
      });
      expect(parked.headers['x-grantline-dlq-reason']).toBe('TypeError: cannot handle this one');
    } finally {
      await sub.stop();
    }
  });
});

describe('in-process bus: stopping', () => {
  it('stops a subscriber in the middle of a drain once its handler returns, not a poll later', async () => {
    const stream = `grant-${randomUUID()}`;
    let started!: () => void;
    const handling = new Promise<void>((resolve) => {
      started = resolve;
    });
    const sub = await bus.subscribe({
      groupId: uniqueName('stop'),
      topics: [TOPICS.grants],
      onCrash: (e) => {
        throw e;
      },
      handle: async (e) => {
        if (e.subject !== stream) return;
        started();
        await new Promise((r) => setTimeout(r, 100));
      },
    });
    await bus.publish([recorded(stream, 1)]);
    await handling;
    const stopping = Date.now();
    await sub.stop();
    // the handler's 100 ms, not the idle poll's second
    expect(Date.now() - stopping).toBeLessThan(700);
  });
});
