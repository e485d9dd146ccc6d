import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { TOPICS } from '@grantline/events';
import { type KafkaBroker, startPrivateKafka } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { assertStreamOrder, createPipeline, orgConnected } from './harness.ts';

// This test stops its broker, so it runs one of its own rather than the shared one.
const broker = await startPrivateKafka();
if (!broker)
  console.warn(
    'SKIPPED broker outage test: needs Java 17 and Maven, or a Docker engine, for a private broker',
  );

describe.skipIf(!broker)('relay during a 10 s Kafka outage', () => {
  let p: Awaited<ReturnType<typeof createPipeline>>;
  beforeAll(async () => {
    p = await createPipeline(inject('infra'), (broker as KafkaBroker).brokers);
  });
  afterAll(async () => {
    await p?.close();
    await broker?.stop();
  });

  it('keeps accepting appends while the broker is down and delivers everything when it returns', async () => {
    const relay = p.relay();
    relay.start();
    const streams = Array.from({ length: 10 }, () => `grant-${randomUUID()}`);
    let appended = 0;
    let failures = 0;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const s = streams[appended % streams.length]!;
        try {
          await p.store.append(s, 'any', [orgConnected(s, `org-${appended}`)]);
          appended++;
        } catch {
          failures++;
        }
        await sleep(10);
      }
    })();
    await sleep(1_500);
    await broker!.pause();
    const duringOutageFrom = appended;
    await sleep(10_000);
    const duringOutage = appended - duringOutageFrom;
    await broker!.resume();
    const resumedAt = Date.now();
    await sleep(1_500);
    writing = false;
    await writer;

    expect(failures).toBe(0);
    expect(duringOutage).toBeGreaterThan(200);
    const received = await p.readTopic(TOPICS.grants, appended, 90_000);
    console.log(
      `broker outage: ${appended} appended (${duringOutage} while down), all delivered ${Date.now() - resumedAt} ms after the broker returned`,
    );
    expect(new Set(received.map((e) => e.id)).size).toBe(appended);
    assertStreamOrder(received);
  }, 180_000);
});
