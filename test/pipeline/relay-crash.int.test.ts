import { randomUUID } from 'node:crypto';
import { TOPICS } from '@grantline/events';
import { idempotentProjection } from '@grantline/message-bus';
import { eventually, spawnScript, uniqueName } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createPipeline, orgConnected } from './harness.ts';

const startRelayProcess = (env: Record<string, string>) => spawnScript('test/pipeline/relay-process.ts', env);

describe('relay killed with SIGKILL between publishing and checkpointing', () => {
  let p: Awaited<ReturnType<typeof createPipeline>>;
  beforeAll(async () => {
    p = await createPipeline(inject('infra'));
  });
  afterAll(() => p?.close());

  it('loses nothing after a restart, and a consumer projection applies each event exactly once', async () => {
    const streams = Array.from({ length: 20 }, () => `grant-${randomUUID()}`);
    for (let i = 0; i < 400; i++) {
      const s = streams[i % streams.length]!;
      await p.store.append(s, 'any', [orgConnected(s, `org-${i}`)]);
    }
    const env = {
      DATABASE_URL: p.db.url,
      KAFKA_BROKERS: inject('infra').kafkaBrokers.join(','),
      TOPIC_PREFIX: p.topicPrefix,
      SCHEMA: p.schema,
      BATCH_SIZE: '150',
    };
    const crashing = startRelayProcess({ ...env, FAULT: 'hang-before-checkpoint' });
    await eventually(() => (crashing.output().includes('published 150') ? true : undefined), {
      timeoutMs: 60_000,
      what: `the relay to publish a batch (output: ${crashing.output()})`,
    });
    const exited = new Promise<NodeJS.Signals | null>((ok) =>
      crashing.child.once('exit', (_code, signal) => ok(signal)),
    );
    crashing.child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const { rows } = await p.db.pool.query(`SELECT position FROM ${p.schema}.relay_checkpoints`);
    expect(rows.map((r) => r.position)).toEqual(['0']); // published, never checkpointed

    const restarted = startRelayProcess(env);
    try {
      const received = await p.readTopic(TOPICS.grants, 400, 60_000);
      expect(new Set(received.map((e) => e.id)).size).toBe(400);
      expect(received.length).toBeGreaterThanOrEqual(550); // the first batch arrived twice

      // A projection over the duplicated topic counts every event once.
      await p.db.pool.query(`CREATE TABLE ${p.schema}.org_counts (stream text PRIMARY KEY, n int NOT NULL)`);
      const subscription = await p.bus.subscribe({
        groupId: uniqueName('projection'),
        topics: [TOPICS.grants],
        onCrash: (e) => {
          throw e;
        },
        handle: idempotentProjection({
          pool: p.db.pool,
          schema: p.schema,
          consumer: 'org-counts',
          project: async (event, tx) => {
            await tx.query(
              `INSERT INTO ${p.schema}.org_counts VALUES ($1, 1) ON CONFLICT (stream) DO UPDATE SET n = org_counts.n + 1`,
              [event.subject],
            );
          },
        }),
      });
      try {
        const total = await eventually(
          async () => {
            const { rows } = await p.db.pool.query(
              `SELECT coalesce(sum(n), 0)::int AS n FROM ${p.schema}.org_counts`,
            );
            return rows[0].n >= 400 ? rows[0].n : undefined;
          },
          { timeoutMs: 60_000, what: 'the projection to catch up' },
        );
        // let any redelivered duplicates arrive, then check they were skipped
        await new Promise((r) => setTimeout(r, 1_000));
        const { rows: after } = await p.db.pool.query(
          `SELECT sum(n)::int AS n, count(*)::int AS streams FROM ${p.schema}.org_counts`,
        );
        expect(total).toBe(400);
        expect(after[0]).toEqual({ n: 400, streams: 20 });
      } finally {
        await subscription.stop();
      }
    } finally {
      restarted.child.kill('SIGTERM');
    }
  });
});
