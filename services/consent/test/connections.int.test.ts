import { migrateReadModels } from '@grantline/event-store';
import { grantsTables } from '@grantline/grant-directory';
import type { ConsumedEvent } from '@grantline/message-bus';
import { createTestDatabase, type TestDatabase } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ConnectionQueries, grantUsageProjection, grantUsageTables } from '../src/projections/connections.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase(inject('infra'), 3);
  await migrateReadModels(db.pool, 'consent', [grantsTables, grantUsageTables]);
  // a restart migrates again: nothing left to apply
  await migrateReadModels(db.pool, 'consent', [grantsTables, grantUsageTables]);
});
afterAll(() => db?.drop());

/** an access token issued under the grant: by a refresh (RefreshTokenRotated) or a redemption (CodeRedeemed) */
const used = (
  grantId: string,
  time: string,
  how: 'refresh' | 'redemption' = 'refresh',
  id = `${grantId}-${time}`,
): ConsumedEvent => ({
  id,
  ...(how === 'refresh'
    ? {
        type: 'RefreshTokenRotated',
        ceType: 'dev.grantline.RefreshTokenRotated.v1',
        data: {
          familyId: `family-${grantId}`,
          previousTokenId: 'a',
          nextTokenId: 'b',
          secretDigest: 'x'.repeat(43),
          clientId: 'c',
          grantId,
          accessTokenId: id,
        },
      }
    : {
        type: 'CodeRedeemed',
        ceType: 'dev.grantline.CodeRedeemed.v1',
        data: { codeId: id, clientId: 'c', grantId, subject: 'u', accessTokenId: id },
      }),
  source: '/grantline/token',
  topic: 'grantline.tokens.v1',
  partition: 0,
  offset: '0',
  subject: `family-${grantId}`,
  streamVersion: 1,
  time,
});

const grant = (id: string, subject: string, clientId: string, createdAt: string, status = 'active') =>
  db.pool.query(
    `INSERT INTO consent.grants (grant_id, subject, client_id, scopes, organisations, status, version, created_at, updated_at)
     VALUES ($1, $2, $3, '{invoices.read}', '{org-1}', $4, 1, $5, $5)`,
    [id, subject, clientId, status, createdAt],
  );

const apply = async (event: ConsumedEvent) => {
  const tx = await db.pool.connect();
  try {
    await grantUsageProjection('consent').apply(event, tx);
  } finally {
    tx.release();
  }
};

describe('connections read model (the account page)', () => {
  it('keeps the latest use of each grant, whatever order and however often events arrive', async () => {
    await grant('g-usage', 'u-usage', 'app-1', '2026-01-01T00:00:00Z');
    await apply(used('g-usage', '2026-01-01T00:00:01.000Z', 'redemption'));
    const usage = async () =>
      (await new ConnectionQueries(db.pool, 'consent').activeOf('u-usage'))[0]?.lastUsedAt?.toISOString();
    expect(await usage()).toBe('2026-01-01T00:00:01.000Z');
    const later = used('g-usage', '2026-01-02T10:00:00.000Z');
    await apply(later);
    await apply(used('g-usage', '2026-01-02T09:00:00.000Z'));
    await apply(later);
    await apply(used('g-other-grant', '2026-01-03T00:00:00.000Z'));
    expect(await usage()).toBe('2026-01-02T10:00:00.000Z');
    const [row] = await new ConnectionQueries(db.pool, 'consent').activeOf('u-usage');
    expect(row?.connectedAt.toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });

  it('applies a run in one statement: the latest use of each grant in it, never moving a time back', async () => {
    await grant('g-run-1', 'u-run', 'app-1', '2026-01-01T00:00:00Z');
    await grant('g-run-2', 'u-run', 'app-2', '2026-01-01T00:00:01Z');
    await apply(used('g-run-2', '2026-02-01T00:00:00.000Z'));
    let statements = 0;
    const counted = {
      query: (...args: Parameters<typeof db.pool.query>) => {
        statements++;
        return db.pool.query(...args);
      },
    };
    await grantUsageProjection('consent').applyRun!(
      [
        used('g-run-1', '2026-01-05T00:00:00.000Z'),
        used('g-run-1', '2026-01-07T00:00:00.000Z', 'redemption'),
        used('g-run-1', '2026-01-06T00:00:00.000Z'),
        // older than what the table holds: kept out
        used('g-run-2', '2026-01-20T00:00:00.000Z'),
      ],
      counted as never,
    );
    expect(statements).toBe(1);
    const rows = await new ConnectionQueries(db.pool, 'consent').activeOf('u-run');
    expect(rows.map((r) => [r.grantId, r.lastUsedAt?.toISOString()])).toEqual([
      ['g-run-1', '2026-01-07T00:00:00.000Z'],
      ['g-run-2', '2026-02-01T00:00:00.000Z'],
    ]);
  });

  it("lists only the user's active grants, grouped by app in the order the apps were first connected", async () => {
    await grant('g-b1', 'u-list', 'app-b', '2026-01-01T00:00:00Z');
    await grant('g-a1', 'u-list', 'app-a', '2026-01-02T00:00:00Z');
    await grant('g-b2', 'u-list', 'app-b', '2026-01-03T00:00:00Z');
    await grant('g-revoked', 'u-list', 'app-a', '2026-01-04T00:00:00Z', 'revoked');
    await grant('g-other', 'u-other', 'app-a', '2026-01-01T00:00:00Z');
    const rows = await new ConnectionQueries(db.pool, 'consent').activeOf('u-list');
    expect(rows.map((r) => [r.clientId, r.grantId, r.lastUsedAt])).toEqual([
      ['app-b', 'g-b1', undefined],
      ['app-b', 'g-b2', undefined],
      ['app-a', 'g-a1', undefined],
    ]);
  });
});
