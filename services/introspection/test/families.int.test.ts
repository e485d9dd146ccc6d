import { randomUUID } from 'node:crypto';
import { migrateReadModels } from '@grantline/event-store';
import type { ConsumedEvent } from '@grantline/message-bus';
import { createTestDatabase, type TestDatabase } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { familiesProjection, familiesTables, findFamily } from '../src/projections/families.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase(inject('infra'));
  await migrateReadModels(db.pool, 'introspection', [familiesTables]);
});
afterAll(() => db?.drop());

const digest = (n: number) => String(n).padStart(43, 'd');
const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString();
const issued = (familyId: string): ConsumedEvent => ({
  id: randomUUID(),
  type: 'RefreshTokenIssued',
  ceType: 'dev.grantline.RefreshTokenIssued.v1',
  source: '/grantline/token',
  subject: `refresh-${familyId}`,
  streamVersion: 1,
  time: at(1),
  data: {
    familyId,
    tokenId: `${familyId}.0`,
    secretDigest: digest(0),
    clientId: 'app',
    grantId: `grant-${familyId}`,
    subject: 'ada',
    scopes: ['invoices.read'],
    organisations: ['acme', 'globex'],
    resources: [],
    accessTokenId: randomUUID(),
  },
  topic: 't',
  partition: 0,
  offset: '0',
});
/** generation `g`, recorded at version g + 1 */
const rotated = (familyId: string, g: number): ConsumedEvent => ({
  ...issued(familyId),
  id: randomUUID(),
  type: 'RefreshTokenRotated',
  ceType: 'dev.grantline.RefreshTokenRotated.v1',
  streamVersion: g + 1,
  time: at(g + 1),
  data: {
    familyId,
    previousTokenId: `${familyId}.${g - 1}`,
    nextTokenId: `${familyId}.${g}`,
    secretDigest: digest(g),
    clientId: 'app',
    grantId: `grant-${familyId}`,
    accessTokenId: randomUUID(),
  },
});
const family = () => randomUUID().replace(/-/g, '').slice(0, 22);

describe('refresh families read model', () => {
  it('applies a run in one statement: each family at its latest token, whatever order and however often', async () => {
    const projection = familiesProjection('introspection');
    const [a, b, c] = [family(), family(), family()];
    // b exists, at generation 3, before the run
    await projection.applyRun!([issued(b), rotated(b, 1), rotated(b, 2), rotated(b, 3)], db.pool);
    let statements = 0;
    const counted = {
      query: (...args: Parameters<typeof db.pool.query>) => {
        statements++;
        return db.pool.query(...args);
      },
    };
    await projection.applyRun!(
      [
        // a begins and rotates twice in the run, one rotation delivered twice
        issued(a),
        rotated(a, 1),
        rotated(a, 2),
        rotated(a, 1),
        // b: a redelivered older rotation, then a newer one
        rotated(b, 2),
        rotated(b, 4),
        // c: a rotation met before its family's first event (redelivery), then the first event
        rotated(c, 1),
        issued(c),
      ],
      counted as never,
    );
    expect(statements).toBe(1);
    const state = async (id: string) => {
      const f = await findFamily(db.pool as never, 'introspection', id);
      return (
        f && {
          token: f.tokenId,
          digest: f.secretDigest,
          organisations: f.organisations,
          issuedAt: f.issuedAt,
        }
      );
    };
    expect(await state(a)).toEqual({
      token: `${a}.2`,
      digest: digest(2),
      organisations: ['acme', 'globex'],
      issuedAt: new Date(at(1)),
    });
    expect(await state(b)).toMatchObject({ token: `${b}.4`, digest: digest(4) });
    expect(await state(c)).toMatchObject({ token: `${c}.1`, digest: digest(1), issuedAt: new Date(at(1)) });
    // the whole run again, and a run that holds only old events: nothing moves back
    const before = await Promise.all([a, b, c].map(state));
    await projection.applyRun!([issued(a), rotated(a, 1), rotated(b, 3), issued(c)], db.pool);
    expect(await Promise.all([a, b, c].map(state))).toEqual(before);
  });

  it("moves a family met again with its first event on to the run's latest token; a rotation with no family row moves nothing", async () => {
    const projection = familiesProjection('introspection');
    const [e, f] = [family(), family()];
    await projection.applyRun!([issued(e)], db.pool);
    // a redelivery of the first event with the rotations after it: the row at generation 0 moves on
    await projection.applyRun!([issued(e), rotated(e, 1), rotated(e, 2)], db.pool);
    expect(await findFamily(db.pool as never, 'introspection', e)).toMatchObject({
      tokenId: `${e}.2`,
      secretDigest: digest(2),
      issuedAt: new Date(at(1)),
    });
    // as the per-event projection did: a family's events come in order on its partition, so a
    // rotation before any row of its family is not kept for later
    await projection.applyRun!([rotated(f, 1)], db.pool);
    expect(await findFamily(db.pool as never, 'introspection', f)).toBeUndefined();
  });

  it('applies one event as the runtime gives it one (apply, inside a transaction)', async () => {
    const projection = familiesProjection('introspection');
    const d = family();
    const tx = await db.pool.connect();
    try {
      await projection.apply(issued(d), tx);
      await projection.apply(rotated(d, 1), tx);
    } finally {
      tx.release();
    }
    expect((await findFamily(db.pool as never, 'introspection', d))?.tokenId).toBe(`${d}.1`);
  });
});
