import { randomUUID } from 'node:crypto';
import { type GrantEvent, InvalidEventError } from '@grantline/events';
import { describe, expect, it } from 'vitest';
import { handleCommand } from '../src/command-handler.ts';
import { ConcurrencyError } from '../src/errors.ts';
import type { EventStore } from '../src/port.ts';

export const grantCreated = (grantId: string, organisations = ['org-1']): GrantEvent => ({
  type: 'GrantCreated',
  data: { grantId, subject: 'user-1', clientId: 'client-1', organisations, scopes: ['accounting.read'] },
});
export const orgConnected = (grantId: string, organisationId: string): GrantEvent => ({
  type: 'OrganisationConnected',
  data: { grantId, organisationId },
});

/** The event store port's contract. Every adapter runs it (Postgres now, PGlite in embedded mode). */
export const eventStoreContract = (adapter: string, store: () => EventStore) =>
  describe(`EventStore contract: ${adapter}`, () => {
    const stream = () => `grant-${randomUUID()}`;

    it('appends to a new stream and reads the events back in order with versions and positions', async () => {
      const id = stream();
      const result = await store().append(id, 'no_stream', [grantCreated(id), orgConnected(id, 'org-2')]);
      expect(result.nextExpectedVersion).toBe(2);
      const read = await store().readStream(id);
      expect(read.currentVersion).toBe(2);
      expect(read.events.map((e) => [e.type, e.streamVersion])).toEqual([
        ['GrantCreated', 1],
        ['OrganisationConnected', 2],
      ]);
      expect(BigInt(read.events[1]!.position)).toBeGreaterThan(BigInt(read.events[0]!.position));
      expect(read.events[0]!.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(read.events[0]!.data).toEqual(grantCreated(id).data);
    });

    it('reads an unknown stream as version 0 with no events', async () => {
      expect(await store().readStream(stream())).toEqual({ currentVersion: 0, events: [] });
    });

    it('reads from a version onwards', async () => {
      const id = stream();
      await store().append(id, 'no_stream', [grantCreated(id), orgConnected(id, 'a'), orgConnected(id, 'b')]);
      const read = await store().readStream(id, { fromVersion: 3 });
      expect(read.events.map((e) => e.streamVersion)).toEqual([3]);
      expect(read.currentVersion).toBe(3);
    });

    it('reads the first event with a later range in one read (withFirst), the range as asked', async () => {
      const id = stream();
      await store().append(id, 'no_stream', [
        grantCreated(id),
        orgConnected(id, 'a'),
        orgConnected(id, 'b'),
        orgConnected(id, 'c'),
      ]);
      const tail = await store().readStream(id, { fromVersion: 3, withFirst: true });
      expect(tail.events.map((e) => e.streamVersion)).toEqual([1, 3, 4]);
      expect(tail.currentVersion).toBe(4);
      // maxCount counts the range, not the first event
      const cut = await store().readStream(id, { fromVersion: 2, maxCount: 2, withFirst: true });
      expect(cut.events.map((e) => e.streamVersion)).toEqual([1, 2, 3]);
      expect(cut.currentVersion).toBe(4);
      // a range past the end: only the first event, and the stream's version
      const past = await store().readStream(id, { fromVersion: 9, withFirst: true });
      expect(past.events.map((e) => e.streamVersion)).toEqual([1]);
      expect(past.currentVersion).toBe(4);
      // from the start, the first event is not repeated
      const all = await store().readStream(id, { withFirst: true });
      expect(all.events.map((e) => e.streamVersion)).toEqual([1, 2, 3, 4]);
    });

    it('reads a stream id no stream can have (a NUL byte) as an empty stream, not an error', async () => {
      expect(await store().readStream('client-\u0000x')).toEqual({ currentVersion: 0, events: [] });
    });

    it('reads at most maxCount events, still reporting the current version', async () => {
      const id = stream();
      await store().append(id, 'no_stream', [grantCreated(id), orgConnected(id, 'a'), orgConnected(id, 'b')]);
      const head = await store().readStream(id, { maxCount: 1 });
      expect(head.events.map((e) => e.streamVersion)).toEqual([1]);
      expect(head.currentVersion).toBe(3);
      const all = await store().readStream(id, { fromVersion: 2, maxCount: 5 });
      expect(all.events.map((e) => e.streamVersion)).toEqual([2, 3]);
      expect(all.currentVersion).toBe(3);
    });

    it('refuses an append at the wrong expected version with a typed conflict naming the actual one', async () => {
      const id = stream();
      await store().append(id, 'no_stream', [grantCreated(id)]);
      const error = await store()
        .append(id, 5, [orgConnected(id, 'x')])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({ streamId: id, expected: 5, actual: 1, retriable: true });
      await expect(store().append(id, 'no_stream', [orgConnected(id, 'x')])).rejects.toBeInstanceOf(
        ConcurrencyError,
      );
      await expect(store().append(stream(), 'stream_exists', [orgConnected(id, 'x')])).rejects.toBeInstanceOf(
        ConcurrencyError,
      );
      expect((await store().readStream(id)).currentVersion).toBe(1);
    });

    it('lets exactly one of two appends with the same expected version win', async () => {
      const id = stream();
      await store().append(id, 'no_stream', [grantCreated(id)]);
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => store().append(id, 1, [orgConnected(id, `org-${i}`)])),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results.filter((r) => r.status === 'rejected')) {
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
      }
      expect((await store().readStream(id)).currentVersion).toBe(2);
    });

    it('appends with `any` from many writers without losing one', async () => {
      const id = stream();
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => store().append(id, 'any', [orgConnected(id, `o${i}`)])),
      );
      const read = await store().readStream(id);
      expect(read.events.map((e) => e.streamVersion)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    });

    it('refuses an event that fails its schema, naming the field, and stores nothing', async () => {
      const id = stream();
      const bad = {
        type: 'GrantCreated',
        data: { grantId: id, subject: '', clientId: 'c', organisations: [], scopes: ['a b'] },
      };
      const error = await store()
        .append(id, 'no_stream', [bad as GrantEvent])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidEventError);
      expect((error as Error).message).toContain('subject');
      expect((error as Error).message).toContain('scopes.0');
      await expect(store().append(id, 'no_stream', [{ type: 'Nope', data: {} } as never])).rejects.toThrow(
        /unknown event type/,
      );
      expect((await store().readStream(id)).currentVersion).toBe(0);
    });

    it('appends new streams in the same statement (newStreams): both written, or neither', async () => {
      const id = stream();
      await store().append(id, 'no_stream', [grantCreated(id)]);
      const fresh = stream();
      await store().append(id, 1, [orgConnected(id, 'a')], {
        newStreams: [{ streamId: fresh, event: grantCreated(fresh) }],
      });
      expect((await store().readStream(id)).currentVersion).toBe(2);
      const written = await store().readStream(fresh);
      expect(written.events.map((e) => [e.streamVersion, e.type])).toEqual([[1, 'GrantCreated']]);
      // the append fails its expected version: the new stream is not written either
      const notWritten = stream();
      await expect(
        store().append(id, 1, [orgConnected(id, 'b')], {
          newStreams: [{ streamId: notWritten, event: grantCreated(notWritten) }],
        }),
      ).rejects.toBeInstanceOf(ConcurrencyError);
      expect((await store().readStream(notWritten)).currentVersion).toBe(0);
      // a new stream that exists already fails the whole append
      await expect(
        store().append(id, 2, [orgConnected(id, 'c')], {
          newStreams: [{ streamId: fresh, event: grantCreated(fresh) }],
        }),
      ).rejects.toBeInstanceOf(ConcurrencyError);
      expect((await store().readStream(id)).currentVersion).toBe(2);
    });

    it('appends under a guard checked by the same statement: written when it holds, else its refusal and nothing', async () => {
      const id = stream();
      await store().append(id, 'no_stream', [grantCreated(id)]);
      const guard = (a: number, b: number) => ({
        sql: '$1::int < $2::int',
        values: [a, b],
        refusal: () => new Error('the guard does not hold'),
      });
      const fresh = stream();
      await store().append(id, 1, [orgConnected(id, 'a')], {
        newStreams: [{ streamId: fresh, event: grantCreated(fresh) }],
        guard: guard(1, 2),
      });
      expect((await store().readStream(id)).currentVersion).toBe(2);
      expect((await store().readStream(fresh)).currentVersion).toBe(1);
      const notWritten = stream();
      await expect(
        store().append(id, 2, [orgConnected(id, 'b')], {
          newStreams: [{ streamId: notWritten, event: grantCreated(notWritten) }],
          guard: guard(2, 1),
        }),
      ).rejects.toThrow('the guard does not hold');
      expect((await store().readStream(id)).currentVersion).toBe(2);
      expect((await store().readStream(notWritten)).currentVersion).toBe(0);
      // a version conflict is said first, whether the guard holds or not
      for (const [a, b] of [
        [3, 1],
        [1, 3],
      ] as const)
        await expect(
          store().append(id, 7, [orgConnected(id, 'c')], { guard: guard(a, b) }),
        ).rejects.toBeInstanceOf(ConcurrencyError);
      expect((await store().readStream(id)).currentVersion).toBe(2);
    });

    it('commits or rolls back every append of a transaction together', async () => {
      const a = `grant-${randomUUID()}`;
      const b = `grant-${randomUUID()}`;
      await expect(
        store().transaction(async (tx) => {
          await tx.append(a, 'no_stream', [grantCreated(a)]);
          await tx.append(b, 'no_stream', [grantCreated(b)]);
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      expect((await store().readStream(a)).currentVersion).toBe(0);
      await store().transaction(async (tx) => {
        await tx.append(a, 'no_stream', [grantCreated(a)]);
        await tx.append(b, 'no_stream', [grantCreated(b)]);
      });
      expect((await store().readStream(b)).currentVersion).toBe(1);
    });

    it('ends a transaction whose append loses a race: a ConcurrencyError, and none of its appends commit', async () => {
      const contested = stream();
      const other = stream();
      let release!: () => void;
      const held = new Promise<void>((r) => {
        release = r;
      });
      let entered!: () => void;
      const inFirst = new Promise<void>((r) => {
        entered = r;
      });
      const first = store().transaction(async (tx) => {
        await tx.append(contested, 'no_stream', [grantCreated(contested)]);
        entered();
        await held;
      });
      await inFirst;
      const second = store().transaction(async (tx) => {
        await tx.append(other, 'no_stream', [grantCreated(other)]);
        await tx.append(contested, 'no_stream', [grantCreated(contested)]);
      });
      const secondSettled = second.catch((error: unknown) => error);
      // the second one's append of the contested stream waits on the first's uncommitted row
      await new Promise((r) => setTimeout(r, 200));
      release();
      await first;
      const conflict = await secondSettled;
      expect(conflict).toBeInstanceOf(ConcurrencyError);
      // a conflict that ended the transaction is not worth retrying within it (handleCommand would)
      if ((conflict as ConcurrencyError).actual === undefined)
        expect((conflict as ConcurrencyError).retriable).toBe(false);
      expect((await store().readStream(contested)).currentVersion).toBe(1);
      expect((await store().readStream(other)).currentVersion).toBe(0);
    });

    it('runs read, decide, append and retries a conflicting command until it lands', async () => {
      const id = stream();
      await store().append(id, 'no_stream', [grantCreated(id)]);
      type State = { orgs: Set<string> };
      const decider = {
        initialState: (): State => ({ orgs: new Set() }),
        evolve: (s: State, e: GrantEvent): State => {
          if (e.type === 'GrantCreated') return { orgs: new Set(e.data.organisations) };
          if (e.type === 'OrganisationConnected')
            return { orgs: new Set([...s.orgs, e.data.organisationId]) };
          return s;
        },
        decide: (org: string, s: State): GrantEvent[] => (s.orgs.has(org) ? [] : [orgConnected(id, org)]),
      };
      await Promise.all(
        ['a', 'b', 'c', 'd', 'a', 'b'].map((org) => handleCommand(store(), id, org, decider)),
      );
      const read = await store().readStream(id);
      const connected = read.events
        .filter((e) => e.type === 'OrganisationConnected')
        .map((e) => (e.data as { organisationId: string }).organisationId);
      expect(connected.sort()).toEqual(['a', 'b', 'c', 'd']);
    });
  });
