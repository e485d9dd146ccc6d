import { randomBytes, randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { migrateReadModels, pglitePool } from '@grantline/event-store';
import { registryDirectoryTables } from '@grantline/registry-directory';
import { createTestDatabase, type TestDatabase } from '@grantline/testing';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Credentials, credentialsProjection, credentialsTables } from '../src/projections/credentials.ts';

const HASH = 'scrypt$16384$8$1$c2FsdA$aGFzaA';
const NEW_HASH = 'scrypt$16384$8$1$c2FsdA$bmV3';

const suite = (name: string, pool: () => pg.Pool) =>
  describe(`credentials read model (${name})`, () => {
    const schema = () => `cr_${randomBytes(4).toString('hex')}`;

    it('carries the hashes over from the users table of older versions, before that drops them', async () => {
      const s = schema();
      await pool().query(`
        CREATE SCHEMA ${s};
        CREATE TABLE ${s}.users (
          user_id text PRIMARY KEY, username text NOT NULL UNIQUE, password_hash text NOT NULL,
          status text NOT NULL, organisations text[] NOT NULL, credentials_changed_at timestamptz);
        INSERT INTO ${s}.users VALUES ('u1', 'ann', '${HASH}', 'active', '{}', NULL)`);
      // the order the authorization service migrates in
      await migrateReadModels(pool(), s, [credentialsTables, ...registryDirectoryTables]);
      expect(await new Credentials(pool(), s).of('u1')).toEqual({ hash: HASH, version: 1 });
      const { rowCount } = await pool().query(
        `SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'password_hash' AND table_name = 'users'`,
        [s],
      );
      expect(rowCount).toBe(0);
    });

    it('projects created users and changed passwords, counting the changes', async () => {
      const s = schema();
      await migrateReadModels(pool(), s, [credentialsTables, ...registryDirectoryTables]);
      const projection = credentialsProjection(s, []);
      const tx = await pool().connect();
      const event = (type: string, data: unknown) => ({
        id: randomUUID(),
        type,
        ceType: `dev.grantline.${type}.v1`,
        source: '/grantline/registry',
        subject: 'user-u1',
        streamVersion: 1,
        time: new Date().toISOString(),
        data,
        topic: 'grantline.registry.v1',
        partition: 0,
        offset: '0',
      });
      try {
        // events written before hashes were sealed carry them in clear
        await projection.apply(
          event('UserCreated', { userId: 'u1', username: 'ann', passwordHash: HASH, organisations: [] }),
          tx,
        );
        await projection.apply(event('UserPasswordChanged', { userId: 'u1', passwordHash: NEW_HASH }), tx);
        await projection.apply(event('UserDisabled', { userId: 'u1' }), tx);
      } finally {
        tx.release();
      }
      expect(await new Credentials(pool(), s).of('u1')).toEqual({ hash: NEW_HASH, version: 2 });
    });
  });

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase(inject('infra'), 3);
});
afterAll(() => db?.drop());
suite('postgres', () => db.pool);

const lite = pglitePool(new PGlite());
afterAll(() => lite.end());
suite('pglite', () => lite);
