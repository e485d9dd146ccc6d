import { randomUUID } from 'node:crypto';
import { TOPICS } from '@grantline/events';
import { onEvents, onlyWhen, reactTo } from '@grantline/message-bus';
import { eventually } from '@grantline/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedHost, embeddedHost, type Runtime } from '../src/runtime.ts';

const logger = pino({ level: 'silent' });
const noCrash = (error: Error) => {
  throw error;
};
let host: EmbeddedHost;
let runtime: Runtime;

beforeAll(async () => {
  host = await embeddedHost({ logger });
  runtime = await host.runtime({ service: 'consent', logger });
});
afterAll(async () => {
  for (const step of runtime?.shutdown ?? []) await step();
  await host?.close();
});

const created = (grantId: string) => ({
  type: 'GrantCreated' as const,
  data: { grantId, subject: 'usr-1', clientId: 'cl-1', organisations: ['org-1'], scopes: ['a.read'] },
});

/** The runtime's consumers on the embedded adapter: one PGlite session under every service. */
describe('embedded runtime', () => {
  it('a reactor issues commands that commit (outside any projection transaction)', async () => {
    const grantId = `g-${randomUUID()}`;
    await runtime.react(
      'test-reactor',
      [TOPICS.grants],
      reactTo(['GrantCreated'], async (event) => {
        if (event.data.grantId !== grantId) return;
        await runtime.store.append(`grant-${grantId}`, 1, [
          { type: 'GrantRevoked', data: { grantId, reason: 'admin' } },
        ]);
      }),
      noCrash,
    );
    await runtime.store.append(`grant-${grantId}`, 'no_stream', [created(grantId)]);
    await eventually(async () =>
      (await runtime.store.readStream(`grant-${grantId}`)).currentVersion === 2 ? true : undefined,
    );
  });

  it('a projection passes over the events it finds irrelevant without a transaction', async () => {
    const wanted = `g-${randomUUID()}`;
    const other = `g-${randomUUID()}`;
    const seen: string[] = [];
    await runtime.project(
      'test-relevant',
      [TOPICS.grants],
      onlyWhen(
        onEvents(['GrantCreated'], async (event) => {
          seen.push(event.data.grantId);
        }),
        (event) => (event.data as { grantId: string }).grantId === wanted,
      ),
      noCrash,
    );
    await runtime.store.append(`grant-${other}`, 'no_stream', [created(other)]);
    await runtime.store.append(`grant-${wanted}`, 'no_stream', [created(wanted)]);
    await eventually(() => (seen.includes(wanted) ? true : undefined));
    expect(seen).not.toContain(other);
    const { rows } = await runtime.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM consent.processed_events WHERE consumer = 'test-relevant'`,
    );
    // only the relevant event was recorded as processed: the other opened no transaction
    expect(rows[0]!.n).toBe(1);
  });
});
