import { randomBytes } from 'node:crypto';
import { type Clock, manualClock } from '@grantline/clock';
import { createTestDatabase, type TestDatabase } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KeyEncryptionKey } from '../src/kek.ts';
import { KeyManager, SigningKeysUnreadable } from '../src/key-manager.ts';

const logger = { info: () => {}, warn: () => {} };
const kek = () => KeyEncryptionKey.from({ value: randomBytes(32).toString('base64url') });

describe('signing keys at rest', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(inject('infra'), 3);
    await db.pool.query('CREATE SCHEMA token');
  });
  afterAll(() => db?.drop());

  const manager = (key: KeyEncryptionKey, options: { schema?: string; clock?: Clock; lead?: number } = {}) =>
    new KeyManager({
      pool: db.pool,
      schema: options.schema ?? 'token',
      kek: key,
      logger,
      rotationLeadSeconds: options.lead ?? 0,
      retainSeconds: 60,
      ...(options.clock && { clock: options.clock }),
    });

  it('instances starting together on an empty schema all start, on one first key (the table made under the lock)', async () => {
    const key = kek();
    for (const schema of ['together1', 'together2', 'together3', 'together4', 'together5']) {
      await db.pool.query(`CREATE SCHEMA ${schema}`);
      const instances = [1, 2, 3].map(() => manager(key, { schema }));
      const started = await Promise.allSettled(instances.map((i) => i.start()));
      expect(started.filter((s) => s.status === 'rejected')).toEqual([]);
      expect(new Set(instances.map((i) => i.signingKey().kid)).size).toBe(1);
      expect(instances[0]!.jwks().keys).toHaveLength(1);
      for (const i of instances) await i.stop();
    }
  });

  it('refuses to start with another key-encryption key than the one that encrypted them, naming cause and remedy', async () => {
    const first = manager(kek());
    await first.start();
    const kid = first.signingKey().kid;
    await first.stop();
    const error = await manager(kek())
      .start()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SigningKeysUnreadable);
    expect(error).toMatchObject({ startup: true });
    expect((error as Error).message).toContain(kid);
    expect((error as Error).message).toMatch(/GRANTLINE_KEY_ENCRYPTION_KEY.*dev-secrets\.json.*Restore/s);
  });

  it('rotation on the injected clock: the new key is published first, signs after the lead time, and the old one stays published for retainSeconds', async () => {
    await db.pool.query('CREATE SCHEMA rotation');
    const clock = manualClock(Date.parse('2032-06-01T00:00:00Z'));
    const keys = manager(kek(), { schema: 'rotation', clock, lead: 300 });
    await keys.start();
    try {
      const old = keys.signingKey().kid;
      const { kid, activatesAt } = await keys.rotate();
      expect(activatesAt.toISOString()).toBe('2032-06-01T00:05:00.000Z');
      const published = () => keys.jwks().keys.map((k) => k.kid);
      expect(published()).toEqual([kid, old]);
      clock.advance(300_000 - 1);
      expect(keys.signingKey().kid).toBe(old);
      clock.advance(1);
      expect(keys.signingKey().kid).toBe(kid);
      // the retired key verifies the tokens it signed for `retainSeconds` (60) after it stopped signing
      clock.advance(60_000 - 1);
      await keys.refresh();
      expect(published()).toEqual([kid, old]);
      clock.advance(1);
      await keys.refresh();
      expect(published()).toEqual([kid]);
    } finally {
      keys.stop();
    }
  });
});
