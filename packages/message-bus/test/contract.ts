import { randomUUID } from 'node:crypto';
import { type RecordedEvent, TOPICS } from '@grantline/events';
import { eventually, uniqueName } from '@grantline/testing';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { idempotentProjection } from '../src/idempotent.ts';
import type { ConsumedEvent, MessageBus } from '../src/port.ts';

/** An `OrganisationConnected` of the grant `streamId`, as its version `version`. */
export const recorded = (streamId: string, version: number): RecordedEvent => ({
  id: randomUUID(),
  type: 'OrganisationConnected',
  data: { grantId: streamId, organisationId: `org-${version}` },
  streamId,
  streamVersion: version,
  position: String(version),
  time: new Date(),
  source: '/grantline/contract',
  metadata: { correlationId: 'corr-1' },
});

const noCrash = (e: Error) => {
  throw e;
};

/**
 * The message bus port's contract. Every adapter runs it (Kafka, and in-process in the embedded mode),
 * with the database its projections write to (Postgres beside Kafka, PGlite in process), migrated for
 * `schema`.
 */
export const messageBusContract = (
  adapter: string,
  bus: () => MessageBus,
  db: () => { pool: pg.Pool; schema: string },
) =>
  describe(`MessageBus contract: ${adapter}`, () => {
    it('delivers published events with their CloudEvents attributes, each stream in order', async () => {
      const streams = [`grant-${randomUUID()}`, `grant-${randomUUID()}`];
      const events = [1, 2, 3].flatMap((v) => streams.map((s) => recorded(s, v)));
      const seen: ConsumedEvent[] = [];
      const sub = await bus().subscribe({
        groupId: uniqueName('contract'),
        topics: [TOPICS.grants],
        onCrash: noCrash,
        handle: async (e) => {
          if (streams.includes(e.subject)) seen.push(e);
        },
      });
      try {
        await bus().publish(events);
        await eventually(() => (seen.length >= events.length ? true : undefined), { what: 'all events' });
        for (const s of streams)
          expect(seen.filter((e) => e.subject === s).map((e) => e.streamVersion)).toEqual([1, 2, 3]);
        expect(seen[0]).toMatchObject({
          type: 'OrganisationConnected',
          ceType: 'dev.grantline.OrganisationConnected.v1',
          source: '/grantline/contract',
          correlationId: 'corr-1',
          data: { grantId: seen[0]!.subject },
        });
        expect(new Set(seen.map((e) => e.id))).toEqual(new Set(events.map((e) => e.id)));
      } finally {
        await sub.stop();
      }
    });

    it('resumes a consumer group after the last handled event, not from the start', async () => {
      const stream = `grant-${randomUUID()}`;
      const groupId = uniqueName('contract-resume');
      const first: number[] = [];
      const sub1 = await bus().subscribe({
        groupId,
        topics: [TOPICS.grants],
        onCrash: noCrash,
        handle: async (e) => {
          if (e.subject === stream) first.push(e.streamVersion);
        },
      });
      await bus().publish([recorded(stream, 1), recorded(stream, 2)]);
      await eventually(() => (first.length === 2 ? true : undefined), { what: 'the first two events' });
      await sub1.stop();
      const second: number[] = [];
      const sub2 = await bus().subscribe({
        groupId,
        topics: [TOPICS.grants],
        onCrash: noCrash,
        handle: async (e) => {
          if (e.subject === stream) second.push(e.streamVersion);
        },
      });
      try {
        await bus().publish([recorded(stream, 3)]);
        await eventually(() => (second.includes(3) ? true : undefined), { what: 'the third event' });
        expect(second).toEqual([3]);
      } finally {
        await sub2.stop();
      }
    });

    it('hands a subscription only the event types it names, and moves past the others', async () => {
      const stream = `grant-${randomUUID()}`;
      const groupId = uniqueName('contract-types');
      const handled: string[] = [];
      const subscribe = () =>
        bus().subscribe({
          groupId,
          topics: [TOPICS.grants],
          types: ['OrganisationDisconnected'],
          onCrash: noCrash,
          handle: async (e) => {
            if (e.subject === stream) handled.push(`${e.type} ${e.streamVersion}`);
          },
        });
      const disconnected = (version: number): RecordedEvent => ({
        ...recorded(stream, version),
        type: 'OrganisationDisconnected',
      });
      const sub = await subscribe();
      await bus().publish([recorded(stream, 1), disconnected(2), recorded(stream, 3), disconnected(4)]);
      await eventually(() => (handled.length === 2 ? true : undefined), { what: 'the two named events' });
      await sub.stop();
      // the passed-over events count as consumed: the group resumes after them, not before
      const again = await subscribe();
      try {
        await bus().publish([recorded(stream, 5), disconnected(6)]);
        await eventually(() => (handled.length === 3 ? true : undefined), { what: 'the next named event' });
        expect(handled).toEqual([
          'OrganisationDisconnected 2',
          'OrganisationDisconnected 4',
          'OrganisationDisconnected 6',
        ]);
      } finally {
        await again.stop();
      }
    });

    it('skips an event its handler rejects for good, and goes on with the next', async () => {
      const stream = `grant-${randomUUID()}`;
      const handled: number[] = [];
      const sub = await bus().subscribe({
        groupId: uniqueName('contract-poison'),
        topics: [TOPICS.grants],
        onCrash: noCrash,
        handle: async (e) => {
          if (e.subject !== stream) return;
          if (e.streamVersion === 2) throw new TypeError('cannot handle this one');
          handled.push(e.streamVersion);
        },
      });
      try {
        await bus().publish([1, 2, 3].map((v) => recorded(stream, v)));
        await eventually(() => (handled.length === 2 ? true : undefined), { what: 'events 1 and 3' });
        expect(handled).toEqual([1, 3]);
      } finally {
        await sub.stop();
      }
    });

    it('applies each event once through an idempotent projection, however often it arrives', async () => {
      const { pool, schema } = db();
      const stream = `grant-${randomUUID()}`;
      const table = `${schema}.${uniqueName('applied').replace(/[^a-z0-9_]/g, '_')}`;
      await pool.query(`CREATE TABLE ${table} (event_id text NOT NULL)`);
      const project = idempotentProjection({
        pool,
        schema,
        consumer: uniqueName('contract-once'),
        project: async (event, tx) => {
          await tx.query(`INSERT INTO ${table} (event_id) VALUES ($1)`, [event.id]);
        },
      });
      const delivered: ConsumedEvent[] = [];
      const sub = await bus().subscribe({
        groupId: uniqueName('contract-once'),
        topics: [TOPICS.grants],
        onCrash: noCrash,
        handle: async (e) => {
          if (e.subject !== stream) return;
          delivered.push(e);
          await project(e);
        },
      });
      try {
        const events = [1, 2, 3].map((v) => recorded(stream, v));
        // the relay may publish an event twice (at least once): the second copy changes nothing
        await bus().publish([...events, events[1]!]);
        await eventually(() => (delivered.length >= 4 ? true : undefined), { what: 'four deliveries' });
        // and a consumer may see one again after a crash before its offset moved
        await project(delivered[0]!);
        const { rows } = await pool.query<{ event_id: string }>(`SELECT event_id FROM ${table}`);
        expect(rows.map((r) => r.event_id).sort()).toEqual(events.map((e) => e.id).sort());
      } finally {
        await sub.stop();
      }
    });

    it('hands a run of events to handleMany in one call, in order, and an idempotent projection applies each once', async () => {
      const { pool, schema } = db();
      const stream = `grant-${randomUUID()}`;
      const table = `${schema}.${uniqueName('many').replace(/[^a-z0-9_]/g, '_')}`;
      await pool.query(`CREATE TABLE ${table} (event_id text NOT NULL, version int NOT NULL, seq serial)`);
      const project = idempotentProjection({
        pool,
        schema,
        consumer: uniqueName('contract-many'),
        project: async (event, tx) => {
          await tx.query(`INSERT INTO ${table} (event_id, version) VALUES ($1, $2)`, [
            event.id,
            event.streamVersion,
          ]);
        },
      });
      const events = [1, 2, 3, 4].map((v) => recorded(stream, v));
      // published before the group exists: its first fetch finds them all
      await bus().publish([...events.slice(0, 3), events[1]!, events[3]!]);
      const runs: number[] = [];
      const seen: ConsumedEvent[] = [];
      let one = 0;
      const sub = await bus().subscribe({
        groupId: uniqueName('contract-many'),
        topics: [TOPICS.grants],
        onCrash: noCrash,
        handle: async (e) => {
          if (e.subject !== stream) return;
          one++;
          await project(e);
        },
        handleMany: async (batch) => {
          const ours = batch.filter((e) => e.subject === stream);
          if (ours.length > 0) runs.push(ours.length);
          seen.push(...ours);
          await project.many(ours);
        },
      });
      try {
        await eventually(
          async () => {
            const { rows } = await pool.query(`SELECT 1 FROM ${table}`);
            return rows.length >= 4 && runs.reduce((a, b) => a + b, 0) + one >= 5 ? true : undefined;
          },
          { what: 'the five deliveries' },
        );
        // together: the run of five (a duplicate among them) in one call, not one call each
        expect(Math.max(...runs)).toBeGreaterThan(1);
        const { rows } = await pool.query<{ event_id: string; version: number }>(
          `SELECT event_id, version FROM ${table} ORDER BY seq`,
        );
        expect(rows.map((r) => r.version)).toEqual([1, 2, 3, 4]);
        expect(rows.map((r) => r.event_id)).toEqual(events.map((e) => e.id));
        // a later redelivery of the whole run changes nothing
        await project.many(seen);
        expect((await pool.query(`SELECT 1 FROM ${table}`)).rows).toHaveLength(4);
      } finally {
        await sub.stop();
      }
    });

    it('hands a run that handleMany rejects for good to handle one by one: the bad event is skipped, the others applied', async () => {
      const stream = `grant-${randomUUID()}`;
      await bus().publish([1, 2, 3].map((v) => recorded(stream, v)));
      const handled: number[] = [];
      let rejectedRuns = 0;
      const sub = await bus().subscribe({
        groupId: uniqueName('contract-many-poison'),
        topics: [TOPICS.grants],
        onCrash: noCrash,
        handlerAttempts: 1,
        handle: async (e) => {
          if (e.subject !== stream) return;
          if (e.streamVersion === 2) throw new TypeError('cannot handle this one');
          handled.push(e.streamVersion);
        },
        handleMany: async (batch) => {
          if (batch.some((e) => e.subject === stream && e.streamVersion === 2)) {
            rejectedRuns++;
            throw new TypeError('cannot handle this run');
          }
          for (const e of batch) if (e.subject === stream) handled.push(e.streamVersion);
        },
      });
      try {
        await eventually(() => (handled.length === 2 ? true : undefined), { what: 'events 1 and 3' });
        expect(handled).toEqual([1, 3]);
        expect(rejectedRuns).toBeGreaterThan(0);
      } finally {
        await sub.stop();
      }
    });

    it('carries revocation facts and heartbeats on the compacted revocations topic, keyed by fact', async () => {
      const key = `grant:${randomUUID()}`;
      const time = new Date();
      const message = (type: string, subject: string, data: unknown): RecordedEvent => ({
        id: randomUUID(),
        type,
        data,
        streamId: subject,
        streamVersion: 1,
        position: '0',
        time,
        source: '/grantline/introspection',
        metadata: {},
      });
      const fact = message('RevocationFact', key, {
        key,
        kind: 'grant',
        grantId: key.slice(6),
        revokedAt: time.toISOString(),
        expiresAt: new Date(time.getTime() + 660_000).toISOString(),
        sequence: 1,
      });
      const beat = (n: number) =>
        message('RevocationHeartbeat', 'heartbeat', { time: time.toISOString(), lastSequence: n });
      await bus().publish([fact, beat(1), beat(2)]);
      const seen: ConsumedEvent[] = [];
      const sub = await bus().subscribe({
        groupId: uniqueName('contract-revocations'),
        topics: [TOPICS.revocations],
        fromBeginning: true,
        onCrash: noCrash,
        handle: async (e) => {
          seen.push(e);
        },
      });
      try {
        const last = () => seen.filter((e) => e.type === 'RevocationHeartbeat').at(-1);
        await eventually(
          () =>
            seen.some((e) => e.subject === key) &&
            (last()?.data as { lastSequence: number })?.lastSequence === 2
              ? true
              : undefined,
          { what: 'the fact and the last heartbeat' },
        );
        expect(seen.find((e) => e.subject === key)).toMatchObject({
          ceType: 'dev.grantline.RevocationFact.v1',
          topic: expect.stringContaining(TOPICS.revocations),
          data: { key, kind: 'grant' },
        });
      } finally {
        await sub.stop();
      }
    });
  });
