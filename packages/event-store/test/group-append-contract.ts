import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ConcurrencyError } from '../src/errors.ts';
import { GroupAppend } from '../src/group-commit.ts';
import type { PostgresEventStore } from '../src/postgres/store.ts';
import { grantCreated, orgConnected } from './contract.ts';

const stream = () => `grant-${randomUUID()}`;
/** a guard with a text, a number and a date value, as a group append passes them (text, cast) */
const guard = (holds: boolean) => ({
  sql: `$1::text = 'yes' AND $2::int > 0 AND $3::timestamptz < now()`,
  values: [holds ? 'yes' : 'no', 1, new Date(Date.now() - 60_000)],
  refusal: () => new Error('the guard does not hold'),
});

/** `GroupAppend` on a store: what each caller hears is what its own `append` would have said. */
export const groupAppendContract = (
  adapter: string,
  store: () => PostgresEventStore,
  pool: () => Pick<pg.Pool, 'query'>,
) =>
  describe(`group append (${adapter})`, () => {
    const begun = async () => {
      const id = stream();
      await store().append(id, 'no_stream', [grantCreated(id)]);
      return id;
    };
    const transactionOf = async (id: string) => {
      const { rows } = await pool().query<{ x: string }>(
        `SELECT transaction_id::text AS x FROM ${store().schema}.events WHERE stream_id = $1 ORDER BY stream_version`,
        [id],
      );
      return rows.map((r) => r.x);
    };

    it('writes the appends that arrive together in one transaction; each fails alone, as its own append would', async () => {
      const group = new GroupAppend(store(), { maxInFlight: 1 });
      const [ok, stale, refused, invalid, lone] = await Promise.all([
        begun(),
        begun(),
        begun(),
        begun(),
        begun(),
      ]);
      const access = stream();
      // the first is written at once (or alone, after the turn); the others queue and are written together
      const first = group.append(lone, 1, [orgConnected(lone, 'a')]);
      const results = await Promise.allSettled([
        group.append(ok, 1, [orgConnected(ok, 'a'), orgConnected(ok, 'b')], {
          newStreams: [{ streamId: access, event: grantCreated(access) }],
          guard: guard(true),
        }),
        group.append(stale, 7, [orgConnected(stale, 'a')], { guard: guard(true) }),
        group.append(refused, 1, [orgConnected(refused, 'a')], { guard: guard(false) }),
        group.append(invalid, 1, [{ type: 'OrganisationConnected', data: { nonsense: true } } as never]),
      ]);
      await first;
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected']);
      expect(
        (results[0] as PromiseFulfilledResult<{ nextExpectedVersion: number }>).value.nextExpectedVersion,
      ).toBe(3);
      expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
      expect((results[2] as PromiseRejectedResult).reason.message).toBe('the guard does not hold');
      expect((results[3] as PromiseRejectedResult).reason).not.toBeInstanceOf(ConcurrencyError);
      expect((await store().readStream(ok)).events.map((e) => e.streamVersion)).toEqual([1, 2, 3]);
      expect((await store().readStream(access)).currentVersion).toBe(1);
      for (const id of [stale, refused, invalid])
        expect((await store().readStream(id)).currentVersion).toBe(1);
      // the new events of the batch share a transaction: one statement, one commit
      const [, ...okWrites] = await transactionOf(ok);
      expect(new Set([...okWrites, ...(await transactionOf(access))]).size).toBe(1);
    });

    it('keeps two appends to one stream in order: the second, expecting the old version, is a conflict', async () => {
      const group = new GroupAppend(store(), { maxInFlight: 1 });
      const id = await begun();
      const [a, b, c] = await Promise.allSettled([
        group.append(id, 1, [orgConnected(id, 'a')]),
        group.append(id, 1, [orgConnected(id, 'b')]),
        group.append(id, 2, [orgConnected(id, 'c')]),
      ]);
      expect([a.status, b.status, c.status]).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((b as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
      const { events } = await store().readStream(id);
      expect(events.map((e) => (e.data as { organisationId?: string }).organisationId)).toEqual([
        undefined,
        'a',
        'c',
      ]);
    });

    it('decides a race with another writer by the store: the loser hears a conflict, the rest of its batch is written', async () => {
      const [contested, other, opener] = await Promise.all([begun(), begun(), begun()]);
      let pending: Promise<PromiseSettledResult<unknown>[]> | undefined;
      await store().transaction(async (tx) => {
        // another writer takes version 2 and holds its commit while the batch is written (on Postgres
        // the batch's insert waits for it, then fails as a whole on the unique version: each append is
        // then written alone)
        await tx.append(contested, 1, [orgConnected(contested, 'other-writer')]);
        const group = new GroupAppend(store(), { maxInFlight: 1 });
        pending = Promise.allSettled([
          group.append(opener, 1, [orgConnected(opener, 'x')]),
          group.append(contested, 1, [orgConnected(contested, 'batch')]),
          group.append(other, 1, [orgConnected(other, 'x')]),
        ]);
        await sleep(300);
      });
      const [, lost, written] = (await pending)!;
      expect(lost!.status).toBe('rejected');
      expect((lost as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
      expect(written!.status).toBe('fulfilled');
      expect((await store().readStream(other)).currentVersion).toBe(2);
      const { events } = await store().readStream(contested);
      expect(events.map((e) => (e.data as { organisationId?: string }).organisationId)).toEqual([
        undefined,
        'other-writer',
      ]);
    });
  });
