import { randomBytes, randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { migrateReadModels, pglitePool } from '@grantline/event-store';
import type { ConsumedEvent } from '@grantline/message-bus';
import { createTestDatabase, eventually, feedProjection, type TestDatabase } from '@grantline/testing';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  ClientDirectory,
  People,
  registryDirectoryProjection,
  registryDirectoryTables,
  UserDirectory,
} from '../src/index.ts';

const consumed = (type: string, data: unknown, time = new Date()): ConsumedEvent => ({
  id: randomUUID(),
  type,
  ceType: `dev.grantline.${type}.v1`,
  source: '/grantline/registry',
  subject: 'stream',
  streamVersion: 1,
  time: time.toISOString(),
  data,
  topic: 'grantline.registry.v1',
  partition: 0,
  offset: '0',
});

/** Applies events as the runtime does: one transaction each. */

const metadata = (tokenEndpointAuthMethod: string) => ({
  clientName: 'Books',
  redirectUris: ['https://books.example/cb'],
  grantTypes: ['authorization_code'],
  responseTypes: ['code'],
  tokenEndpointAuthMethod,
  scopes: ['invoices.read'],
  resources: [],
});
const digest = (c: string) => c.repeat(43);

/** The tables as the code before read-model migrations created them (the authz schema's, with hashes). */
const legacyTables = (schema: string) => `
  CREATE SCHEMA ${schema};
  CREATE TABLE ${schema}.clients (
    client_id text PRIMARY KEY, status text NOT NULL, metadata jsonb NOT NULL, secret_digest text,
    updated_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE ${schema}.users (
    user_id text PRIMARY KEY, username text NOT NULL UNIQUE, password_hash text NOT NULL, status text NOT NULL,
    organisations text[] NOT NULL, credentials_changed_at timestamptz);
  CREATE TABLE ${schema}.organisations (organisation_id text PRIMARY KEY, name text NOT NULL);
  CREATE TABLE ${schema}.scopes (name text PRIMARY KEY, description text NOT NULL);
  INSERT INTO ${schema}.users VALUES ('u-old', 'olga', 'scrypt$...', 'active', '{org-1}', NULL);
  INSERT INTO ${schema}.scopes VALUES ('invoices.read', 'Read invoices')`;

const suite = (name: string, pool: () => pg.Pool) =>
  describe(`registry directory (${name})`, () => {
    const schema = () => `rd_${randomBytes(4).toString('hex')}`;

    it('projects clients, users, organisations and scopes from registry events', async () => {
      const s = schema();
      await migrateReadModels(pool(), s, registryDirectoryTables);
      const disabledAt = new Date('2030-01-01T00:00:00Z');
      await feedProjection(pool(), registryDirectoryProjection(s), [
        consumed('ClientRegistered', {
          clientId: 'c1',
          metadata: metadata('client_secret_basic'),
          secretDigest: digest('a'),
          registrationTokenDigest: digest('r'),
          issuedAt: 0,
        }),
        consumed('ClientSecretRotated', { clientId: 'c1', secretDigest: digest('b') }),
        consumed('ClientResourceServerSet', { clientId: 'c1', resources: ['https://invoices.example/'] }),
        consumed('ClientRegistered', {
          clientId: 'c2',
          metadata: metadata('client_secret_post'),
          secretDigest: digest('c'),
          registrationTokenDigest: digest('r'),
          issuedAt: 0,
        }),
        // off the secret methods: the secret goes
        consumed('ClientMetadataUpdated', { clientId: 'c2', metadata: metadata('private_key_jwt') }),
        consumed('ClientDisabled', { clientId: 'c2' }),
        consumed('UsernameClaimed', { username: 'ann', userId: 'u1' }),
        consumed('UserCreated', { userId: 'u1', username: 'ann', organisations: ['org-1'] }),
        consumed('UserAddedToOrganisation', { userId: 'u1', organisationId: 'org-2' }),
        consumed('UserRemovedFromOrganisation', { userId: 'u1', organisationId: 'org-1' }),
        consumed('UserDisabled', { userId: 'u1' }, disabledAt),
        consumed('OrganisationCreated', { organisationId: 'org-2', name: 'Acme' }),
        consumed('ScopeDefined', { name: 'invoices.read', description: 'Read invoices' }),
      ]);
      const clients = new ClientDirectory(pool(), s);
      expect(await clients.read('c1')).toMatchObject({
        status: 'active',
        secretDigest: digest('b'),
        servedResources: ['https://invoices.example/'],
      });
      expect(await clients.read('c2')).toMatchObject({
        status: 'disabled',
        secretDigest: undefined,
        tokenEndpointAuthMethod: 'private_key_jwt',
        servedResources: [],
      });
      const people = new People(pool(), s);
      expect(await people.userByName('ann')).toEqual({
        userId: 'u1',
        username: 'ann',
        status: 'disabled',
        organisations: ['org-2'],
        credentialsChangedAt: disabledAt,
      });
      expect(await people.organisations(['org-1', 'org-2'])).toEqual([{ id: 'org-2', name: 'Acme' }]);
      expect(await people.scopeDescriptions(['invoices.read'])).toEqual(
        new Map([['invoices.read', 'Read invoices']]),
      );
    });

    it("UserDirectory caches a user's status until the projection says it changed (never a stale active)", async () => {
      const s = schema();
      await migrateReadModels(pool(), s, registryDirectoryTables);
      const projection = registryDirectoryProjection(s);
      await feedProjection(pool(), projection, [
        consumed('UserCreated', { userId: 'u1', username: 'ann', organisations: ['org-1'] }),
      ]);
      // a TTL far longer than the test: only the notification can make it read the change
      const users = new UserDirectory(new People(pool(), s), pool(), s, 600_000);
      const stop = users.watch({ warn: () => {} });
      try {
        // cached once it listens: the row edited behind its back is not read again
        await eventually(
          async () => {
            await users.user('u1');
            await pool().query(`UPDATE ${s}.users SET username = 'cached?' WHERE user_id = 'u1'`);
            const again = await users.user('u1');
            await pool().query(`UPDATE ${s}.users SET username = 'ann' WHERE user_id = 'u1'`);
            return again?.username === 'ann' ? true : undefined;
          },
          { what: 'the user cached' },
        );
        expect((await users.user('u1'))?.status).toBe('active');
        const disabledAt = new Date('2030-01-01T00:00:00Z');
        await feedProjection(pool(), projection, [consumed('UserDisabled', { userId: 'u1' }, disabledAt)]);
        await eventually(async () => ((await users.user('u1'))?.status === 'disabled' ? true : undefined), {
          what: 'the disabled status read',
          timeoutMs: 5_000,
        });
        expect((await users.user('u1'))?.credentialsChangedAt).toEqual(disabledAt);
        // an unknown id (a client's own subject) is cached as unknown until the user is created
        expect(await users.user('u2')).toBeUndefined();
        await feedProjection(pool(), projection, [
          consumed('UserCreated', { userId: 'u2', username: 'bob', organisations: [] }),
        ]);
        await eventually(async () => ((await users.user('u2'))?.status === 'active' ? true : undefined), {
          what: 'the created user read',
          timeoutMs: 5_000,
        });
      } finally {
        await stop();
      }
    });

    it('starts on tables created before it had migrations, dropping the old password hashes', async () => {
      const s = schema();
      await pool().query(legacyTables(s));
      await migrateReadModels(pool(), s, registryDirectoryTables);
      const { rows } = await pool().query(
        `SELECT model, version FROM ${s}.read_model_migrations ORDER BY model, version`,
      );
      expect(rows).toEqual([
        { model: 'clients', version: 1 },
        { model: 'clients', version: 2 },
        { model: 'people', version: 1 },
        { model: 'people', version: 2 },
      ]);
      const people = new People(pool(), s);
      expect(await people.user('u-old')).toMatchObject({ username: 'olga', organisations: ['org-1'] });
      expect(await people.scopeNames()).toEqual(['invoices.read']);
      const hashes = await pool().query(
        `SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'password_hash'`,
        [s],
      );
      expect(hashes.rowCount).toBe(0);
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
