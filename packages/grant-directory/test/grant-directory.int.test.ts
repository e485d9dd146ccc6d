import { randomBytes, randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { migrateReadModels, pglitePool } from '@grantline/event-store';
import type { ConsumedEvent } from '@grantline/message-bus';
import { createTestDatabase, feedProjection, type TestDatabase } from '@grantline/testing';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  activeGrantsWithOrganisation,
  EndedSessions,
  endedSessionsProjection,
  endedSessionsTables,
  GrantQueries,
  grantsProjection,
  grantsTables,
} from '../src/index.ts';

const consumed = (type: string, data: unknown, streamVersion = 1): ConsumedEvent => ({
  id: randomUUID(),
  type,
  ceType: `dev.grantline.${type}.v1`,
  source: '/grantline/consent',
  subject: 'stream',
  streamVersion,
  time: new Date().toISOString(),
  data,
  topic: 'grantline.grants.v1',
  partition: 0,
  offset: '0',
});

/** Applies events as the runtime does: one transaction each. */

const created = (grantId: string, organisations = ['org-1']) =>
  consumed('GrantCreated', {
    grantId,
    subject: 'u1',
    clientId: 'c1',
    organisations,
    scopes: ['invoices.read'],
  });

/** The tables as the code before read-model migrations created them. */
const legacyTables = (schema: string) => `
  CREATE SCHEMA ${schema};
  CREATE TABLE ${schema}.grants (
    grant_id text PRIMARY KEY, subject text NOT NULL, client_id text NOT NULL, scopes text[] NOT NULL,
    organisations text[] NOT NULL, status text NOT NULL, version int NOT NULL,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
  CREATE INDEX grants_by_subject_client ON ${schema}.grants (subject, client_id, created_at);
  CREATE TABLE ${schema}.ended_sessions (session_id text PRIMARY KEY, ended_at timestamptz NOT NULL);
  INSERT INTO ${schema}.ended_sessions VALUES ('s-old', now())`;

const suite = (name: string, pool: () => pg.Pool) =>
  describe(`grant directory (${name})`, () => {
    const schema = () => `gd_${randomBytes(4).toString('hex')}`;

    it('projects grants in stream order; a redelivered older event changes nothing, revocation is terminal', async () => {
      const s = schema();
      await migrateReadModels(pool(), s, [grantsTables, endedSessionsTables]);
      await feedProjection(pool(), grantsProjection(s), [
        created('g1'),
        consumed('OrganisationConnected', { grantId: 'g1', organisationId: 'org-2' }, 2),
        consumed(
          'GrantMerged',
          { grantId: 'g1', scopes: ['invoices.read', 'invoices.write'], organisations: ['org-1', 'org-2'] },
          3,
        ),
        consumed('OrganisationDisconnected', { grantId: 'g1', organisationId: 'org-1' }, 4),
        // a redelivery of version 2 after 4
        consumed('OrganisationConnected', { grantId: 'g1', organisationId: 'org-2' }, 2),
        created('g2'),
        consumed('GrantRevoked', { grantId: 'g2', reason: 'user' }, 2),
        consumed('GrantReplaced', { grantId: 'g2', scopes: [], organisations: ['org-9'] }, 3),
      ]);
      const grants = new GrantQueries(pool(), s);
      expect(await grants.get('g1')).toEqual({
        grantId: 'g1',
        subject: 'u1',
        clientId: 'c1',
        scopes: ['invoices.read', 'invoices.write'],
        organisations: ['org-2'],
        status: 'active',
      });
      expect(await grants.get('g2')).toMatchObject({ status: 'revoked', organisations: ['org-1'] });
      expect(await grants.latestActive('u1', 'c1')).toMatchObject({ grantId: 'g1' });
      const tx = await pool().connect();
      try {
        expect(await activeGrantsWithOrganisation(tx, s, 'u1', 'org-2')).toEqual(['g1']);
        expect(await activeGrantsWithOrganisation(tx, s, 'u1', 'org-1')).toEqual([]);
      } finally {
        tx.release();
      }
    });

    it('records ended sign-ins', async () => {
      const s = schema();
      await migrateReadModels(pool(), s, [grantsTables, endedSessionsTables]);
      await feedProjection(pool(), endedSessionsProjection(s), [
        consumed('UserLoggedOut', { userId: 'u1', sessionId: 's1' }),
        consumed('UserLoggedOut', { userId: 'u1', sessionId: 's1' }),
      ]);
      const ended = new EndedSessions(pool(), s);
      expect([await ended.has('s1'), await ended.has('s2')]).toEqual([true, false]);
    });

    it('starts on tables created before it had migrations', async () => {
      const s = schema();
      await pool().query(legacyTables(s));
      await migrateReadModels(pool(), s, [grantsTables, endedSessionsTables]);
      expect(await new EndedSessions(pool(), s).has('s-old')).toBe(true);
      await feedProjection(pool(), grantsProjection(s), [created('g1')]);
      expect(await new GrantQueries(pool(), s).get('g1')).toMatchObject({ status: 'active' });
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
