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

const issued = (grantId: string | undefined, time: string, id = `${grantId}-${time}`): ConsumedEvent => ({
  id,
  type: 'AccessTokenIssued',
  ceType: 'dev.grantline.AccessTokenIssued.v1',
  source: '/grantline/token',
  topic: 'grantline.tokens.v1',
  partition: 0,
  offset: '0',
  subject: `family-${grantId}`,
  streamVersion: 1,
  time,
  data: {
    jti: id,
    clientId: 'c',
    subject: 'u',
    grantType: 'refresh_token',
    scopes: [],
    audience: [],
    expiresAt: 0,
    grantId,
  },
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
    const later = issued('g-usage', '2026-01-02T10:00:00.000Z');
    await apply(later);
    await apply(issued('g-usage', '2026-01-02T09:00:00.000Z'));
    await apply(later);
    await apply(issued(undefined, '2026-01-03T00:00:00.000Z'));
    const [row] = await new ConnectionQueries(db.pool, 'consent').activeOf('u-usage');
    expect(row?.lastUsedAt?.toISOString()).toBe('2026-01-02T10:00:00.000Z');
    expect(row?.connectedAt.toISOString()).toBe('2026-01-01T00:00:00.000Z');
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
