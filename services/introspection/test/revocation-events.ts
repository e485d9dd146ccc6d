import { randomUUID } from 'node:crypto';
import { migrateReadModels } from '@grantline/event-store';
import type { RecordedEvent } from '@grantline/events';
import type { ConsumedEvent } from '@grantline/message-bus';
import { uniqueName } from '@grantline/testing';
import type pg from 'pg';
import { factsTables } from '../src/projections/facts.ts';

// The revocation projector's tests' events: one grant's life and its tokens' ends, and the facts
// they leave, read back.

const base = Math.floor(Date.now() / 60_000) * 60_000;
export const at = (s: number) => new Date(base + s * 1_000);
let seq = 0;
export const event = (
  type: string,
  subject: string,
  data: unknown,
  time = at(++seq % 60),
): RecordedEvent => ({
  id: randomUUID(),
  type,
  data,
  streamId: subject,
  streamVersion: 1,
  position: String(seq),
  time,
  source: '/grantline/test',
  metadata: {},
});
export const consumed = (e: RecordedEvent): ConsumedEvent => ({
  id: e.id,
  type: e.type,
  ceType: `dev.grantline.${e.type}.v1`,
  source: e.source,
  subject: e.streamId,
  streamVersion: e.streamVersion,
  time: e.time.toISOString(),
  data: e.data,
  topic: 't',
  partition: 0,
  offset: '0',
});

/** One grant's life and its tokens' ends: every kind of fact the projector records. */
export const history = (g = randomUUID(), family = randomUUID().replace(/-/g, '').slice(0, 22)) => [
  event('GrantCreated', `grant-${g}`, {
    grantId: g,
    subject: 'ada',
    clientId: 'app',
    organisations: ['acme', 'globex'],
    scopes: ['invoices.read'],
  }),
  event('OrganisationDisconnected', `grant-${g}`, { grantId: g, organisationId: 'acme' }),
  event('OrganisationConnected', `grant-${g}`, { grantId: g, organisationId: 'acme' }),
  event('TokenRevoked', 'access-token-j1', { tokenId: 'j1', tokenType: 'access_token', clientId: 'app' }),
  event('RefreshFamilyRevoked', `refresh-${family}`, {
    familyId: family,
    clientId: 'app',
    grantId: g,
    reason: 'reuse',
    accessTokenIds: ['j2', 'j3'],
  }),
  event('GrantRevoked', `grant-${g}`, { grantId: g, reason: 'user' }),
  // the same grant revoked again later (a redelivery, or a second disconnect): still one fact
  event('GrantRevoked', `grant-${g}`, { grantId: g, reason: 'admin' }, at(59)),
  event('SubjectRevoked', 'subject-revocation-bob', { subject: 'bob', reason: 'admin' }),
  event('ClientRevoked', 'client-revocation-evil', { clientId: 'evil', reason: 'admin' }),
];

/** A fresh schema holding the facts' tables. */
export const newFactsSchema = async (pool: pg.Pool, name = 'facts'): Promise<string> => {
  const schema = uniqueName(name);
  await pool.query(`CREATE SCHEMA ${schema}`);
  await migrateReadModels(pool, schema, [factsTables]);
  return schema;
};

/** The facts recorded in `schema`, by key. */
export const factsIn = async (pool: pg.Pool, schema: string) =>
  (await pool.query(`SELECT key, fact, revoked_at, expires_at FROM ${schema}.revocation_facts ORDER BY key`))
    .rows;
