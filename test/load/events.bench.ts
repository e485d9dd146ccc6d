// pnpm bench:events — event pipeline figures on real Postgres and Kafka (found or started like the tests):
//  1. append throughput, one event per append (8 concurrent writers)
//  2. append throughput, 100 events per append (4 concurrent writers)
//  3. append-to-consumed latency through relay and Kafka at a steady 1,000 events/s (open loop), broken
//     down into append committed / published to Kafka / consumed, each measured from when it was due.
// BENCH_RATE, BENCH_SECONDS change the load; BENCH_SYNCHRONOUS_COMMIT=off shows what Postgres's commit
// fsync costs (durability traded away: for diagnosis only, never a production setting).
import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { migrate, PostgresEventStore, Relay } from '@grantline/event-store';
import { type GrantEvent, TOPICS } from '@grantline/events';
import { KafkaMessageBus } from '@grantline/message-bus';
import { createTestDatabase, resolveInfrastructure, uniqueName } from '@grantline/testing';
import pg from 'pg';
import { pino } from 'pino';
import { fmt, latencyRecorder } from './stats.ts';

const logger = pino({ level: 'warn' });
const event = (grantId: string, i: number): GrantEvent => ({
  type: 'OrganisationConnected',
  data: { grantId, organisationId: `org-${i}` },
});

const { infra, stop } = await resolveInfrastructure({ steadyState: true });
const db = await createTestDatabase(infra, 20);
const synchronousCommit = process.env.BENCH_SYNCHRONOUS_COMMIT ?? 'on';
// set for the database before the pool's first connection (a query from the pool's `connect` event
// would race the caller's first query on that client, which pg warns about)
{
  const setup = new pg.Client({ connectionString: db.url });
  await setup.connect();
  await setup.query(
    `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit TO ${synchronousCommit === 'off' ? 'off' : 'on'}', current_database()); END $$`,
  );
  await setup.end();
}
try {
  await migrate(db.pool, 'bench');
  const store = new PostgresEventStore({ pool: db.pool, schema: 'bench', source: '/grantline/bench' });

  const throughput = async (label: string, writers: number, appends: number, perAppend: number) => {
    const started = performance.now();
    await Promise.all(
      Array.from({ length: writers }, async () => {
        for (let i = 0; i < appends; i++) {
          const stream = `grant-${randomUUID()}`;
          await store.append(
            stream,
            'no_stream',
            Array.from({ length: perAppend }, (_, k) => event(stream, k)),
          );
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const events = writers * appends * perAppend;
    console.log(
      `${label}: ${events} events in ${fmt(seconds, 2)} s = ${fmt(events / seconds, 0)} events/s (${fmt((writers * appends) / seconds, 0)} appends/s)`,
    );
  };
  await throughput('warm-up', 4, 200, 1);
  await throughput('append, 1 event per append, 8 writers', 8, 1_000, 1);
  await throughput('append, 100 events per append, 4 writers', 4, 50, 100);

  // Latency: relay + Kafka + consumer, at a steady rate, measured from the append call to the handler.
  const bus = new KafkaMessageBus({
    brokers: infra.kafkaBrokers,
    clientId: 'bench',
    logger,
    topicPrefix: `${uniqueName('bench')}.`,
  });
  await bus.ensureTopics([{ topic: TOPICS.grants }]);
  const sentAt = new Map<string, number>();
  const [appended, published, latency] = [latencyRecorder(), latencyRecorder(), latencyRecorder()];
  const publisher = {
    publish: async (events: Parameters<KafkaMessageBus['publish']>[0]) => {
      await bus.publish(events);
      const now = performance.now();
      for (const e of events) {
        const t0 = sentAt.get(e.streamId);
        if (t0 !== undefined) published.recordMs(now - t0);
      }
    },
  };
  const relay = new Relay({ pool: db.pool, schema: 'bench', publisher, logger, name: 'bench-latency' });
  await db.pool.query(
    `INSERT INTO bench.relay_checkpoints (relay, transaction_id, position)
     SELECT 'bench-latency', pg_current_xact_id(), coalesce(max(position), 0) FROM bench.events`,
  );
  const sub = await bus.subscribe({
    groupId: uniqueName('bench'),
    topics: [TOPICS.grants],
    onCrash: (e) => {
      throw e;
    },
    handle: async (e) => {
      const t0 = sentAt.get(e.subject);
      if (t0 !== undefined) latency.recordMs(performance.now() - t0);
    },
  });
  relay.start();
  const rate = Number(process.env.BENCH_RATE ?? 1_000);
  const seconds = Number(process.env.BENCH_SECONDS ?? 10);
  // Open loop: each append is due at its slot, and measured from then, so a stalled sender cannot hide latency.
  const drive = async (total: number, measured: boolean) => {
    const start = performance.now();
    const inFlight = new Set<Promise<unknown>>();
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1_000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const stream = `grant-${randomUUID()}`;
      if (measured) sentAt.set(stream, due);
      const p = store
        .append(stream, 'no_stream', [event(stream, i)])
        .then(() => measured && appended.recordMs(performance.now() - due))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
    return performance.now() - start;
  };
  // Warm-up at the measured rate for 3 s: the pool has opened the connections this rate needs (a
  // Postgres connection's first queries are slow while its backend starts and fills its caches:
  // measured from a cold pool, this phase's first 2 s had appends of 300-450 ms), the producer is
  // connected, the consumer group joined and fetching, and the relay leads.
  await drive(rate * 3, false);
  await sleep(1_000);
  const total = rate * seconds;
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  const sendMs = await drive(total, true);
  const sendSeconds = sendMs / 1000;
  const deadline = Date.now() + 30_000;
  while (latency.count() < total && Date.now() < deadline) await sleep(50);
  const line = (name: string, r: ReturnType<typeof latencyRecorder>) => {
    const { p50, p99, max } = r.summary();
    return `${name.padEnd(10)} p50 ${fmt(p50)} ms, p99 ${fmt(p99)} ms, max ${fmt(max)} ms`;
  };
  const { p99 } = latency.summary();
  console.log(
    `append -> consumed at ${rate}/s for ${seconds} s (${fmt(total / sendSeconds, 0)}/s achieved, synchronous_commit=${synchronousCommit}): ${latency.count()}/${total} received`,
  );
  console.log(
    `  ${line('committed', appended)}\n  ${line('published', published)}\n  ${line('consumed', latency)}`,
  );
  loopDelay.disable();
  console.log(
    `  this process's event loop delay while sending: p99 ${fmt(loopDelay.percentile(99) / 1e6)} ms, max ${fmt(loopDelay.max / 1e6)} ms`,
  );
  console.log(`  target p99 < 50 ms append -> consumed: ${p99 < 50 ? 'met' : 'NOT met'}`);
  await relay.stop();
  await sub.stop();
  await bus.close();
} finally {
  await db.drop();
  await stop();
}
