import { randomBytes } from 'node:crypto';
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

  const manager = (key: KeyEncryptionKey) =>
    new KeyManager({
      pool: db.pool,
      schema: 'token',
      kek: key,
      logger,
      rotationLeadSeconds: 0,
      retainSeconds: 60,
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
});
