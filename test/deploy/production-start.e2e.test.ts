// The issue's "must show": the production build, started the way the image starts it (its
// ENTRYPOINT and CMD read from deploy/docker/Dockerfile, its ENV and nothing else, plain node on
// compiled JavaScript with production dependencies only), answers its health and discovery
// endpoints; and a distributed service from the same build, its keys from the image's `keys`
// command, does too. No Docker engine exists here: this is what CI can run of the image.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, eventually, freePorts, type TestDatabase, uniqueName } from '@grantline/testing';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildProductionApp, healthy, pnpmEntry, type Started, startAsImage } from './production.ts';

const pnpm = pnpmEntry();
if (!pnpm) console.warn('production-start.e2e: SKIPPED, pnpm not found (run the tests with `pnpm test`)');

/** the processes `pid` forked (GRANTLINE_WORKERS), from /proc */
const childrenOf = (pid: number): number[] =>
  readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** a started process, stopped as `docker stop` does: SIGTERM, then its exit code */
const stop = async (started: Started) => {
  if (started.child.exitCode === null) started.child.kill('SIGTERM');
  return started.exited;
};

describe.skipIf(!pnpm)('the production build, started as the image starts it', () => {
  const root = mkdtempSync(join(tmpdir(), 'grantline-prod-'));
  const app = join(root, 'app');
  const running: Started[] = [];

  beforeAll(() => buildProductionApp(pnpm!, app), 180_000);
  afterAll(async () => {
    await Promise.all(running.map(stop));
    rmSync(root, { recursive: true, force: true });
  });

  it('holds compiled JavaScript and production dependencies only', () => {
    expect(readdirSync(join(app, 'dist')).filter((f) => f.endsWith('.ts'))).toEqual([]);
    const installed = readdirSync(join(app, 'node_modules', '.pnpm')).join('\n');
    for (const dev of [
      'tsx@',
      'typescript@',
      'vitest@',
      'esbuild@',
      '@biomejs',
      'testcontainers@',
      'playwright-core@',
    ])
      expect(installed, dev).not.toContain(dev);
  });

  it('embedded (the default command): healthy, answers /healthz and the metadata, stops on SIGTERM', async () => {
    const port = await freePorts(2);
    const management = port + 1;
    const started = startAsImage(app, {
      PORT: String(port),
      MANAGEMENT_PORT: String(management),
      GRANTLINE_DATA_DIR: join(root, 'data'),
    });
    running.push(started);
    expect(await healthy(app, port, started, 150_000), started.output()).toBe(true);

    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const metadata = await fetch(`${base}/.well-known/oauth-authorization-server`);
    expect(metadata.status).toBe(200);
    const body = (await metadata.json()) as Record<string, string>;
    expect(body.issuer).toBe(`http://localhost:${port}`);
    expect(body.token_endpoint).toBe(`http://localhost:${port}/oauth2/token`);
    // the management listener: Prometheus text, on its own port only
    const metrics = await fetch(`http://127.0.0.1:${management}/metrics`);
    expect(metrics.status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    expect(existsSync(join(root, 'data', 'pglite'))).toBe(true);

    // ready is answered before the start finishes (the demo's seed goes through the endpoints):
    // the graceful stop is in place once it says it runs
    await eventually(() => (started.output().includes('Grantline is running') ? true : undefined), {
      timeoutMs: 60_000,
      what: 'the start-up message',
    });
    expect(await stop(started), started.output()).toBe(0);
  }, 200_000);

  it('an unknown command: exit code 2 and the commands it knows', async () => {
    const started = startAsImage(app, {}, ['nonsense']);
    expect(await started.exited).toBe(2);
    expect(started.output()).toContain('one of: embedded, registry');
  });

  describe('distributed: `keys`, `migrate`, then a service with its own env file', () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await createTestDatabase(inject('infra'));
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('authorization: healthy on Postgres, Kafka and Redis, answers the metadata under its issuer', async () => {
      const infra = inject('infra');
      const keys = join(root, 'keys');
      const writing = startAsImage(app, {}, ['keys', keys]);
      expect(await writing.exited, writing.output()).toBe(0);
      // one directory per service (compose mounts each alone), the admin token in admin/ only
      expect(readdirSync(keys).sort()).toEqual([
        'admin',
        'authorization',
        'consent',
        'introspection',
        'registry',
        'resource-server-example',
        'token',
      ]);
      expect(readdirSync(join(keys, 'admin')).sort()).toEqual(['admin-token', 'admin.env']);
      expect(readdirSync(join(keys, 'authorization'))).toEqual(['authorization.env']);

      const issuer = 'https://grantline.example';
      const prefix = `${uniqueName('prod')}.`;
      const infrastructure = {
        DATABASE_URL: db.url,
        KAFKA_BROKERS: infra.kafkaBrokers.join(','),
        KAFKA_TOPIC_PREFIX: prefix,
        KAFKA_TOPIC_PARTITIONS: '3,grantline.tokens.v1=2',
      };
      // the Helm chart's pre-install Job: schemas and topics before any service starts
      const migrating = startAsImage(app, infrastructure, ['migrate']);
      expect(await migrating.exited, migrating.output()).toBe(0);
      expect(migrating.output()).toContain('migrate: topics in place');
      const port = await freePorts(2);
      const management = port + 1;
      const serviceEnv = {
        PORT: String(port),
        MANAGEMENT_PORT: String(management),
        GRANTLINE_ENV_FILE: join(keys, 'authorization', 'authorization.env'),
        GRANTLINE_ISSUER: issuer,
        ...infrastructure,
        REDIS_URL: infra.redisUrl,
        // two processes sharing the ports (node:cluster), as on a host with cores to spare
        GRANTLINE_WORKERS: '2',
      };
      const started = startAsImage(app, serviceEnv, ['authorization']);
      running.push(started);
      expect(await healthy(app, port, started, 120_000), started.output()).toBe(true);
      expect(childrenOf(started.child.pid!)).toHaveLength(2);
      // the keys from GRANTLINE_ENV_FILE are not handed down in the workers' environment: each reads the file
      const fileVariables = readFileSync(join(keys, 'authorization', 'authorization.env'), 'utf8')
        .split('\n')
        .map((line) => line.split('=')[0]!.trim())
        .filter((name) => /^[A-Z_]+$/.test(name));
      expect(fileVariables.length).toBeGreaterThan(0);
      for (const worker of childrenOf(started.child.pid!)) {
        const environment = readFileSync(`/proc/${worker}/environ`, 'utf8').split('\0');
        expect(environment.filter((entry) => fileVariables.includes(entry.split('=')[0]!))).toEqual([]);
      }
      const metadata = await fetch(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`);
      expect(metadata.status).toBe(200);
      expect(((await metadata.json()) as { issuer: string }).issuer).toBe(issuer);
      const ready = await fetch(`http://127.0.0.1:${management}/readyz`);
      expect(await ready.json()).toMatchObject({ checks: { postgres: 'ok', kafka: 'ok', redis: 'ok' } });
      // the topics migrate created, with the partition counts of KAFKA_TOPIC_PARTITIONS
      const admin = new Kafka({ brokers: infra.kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        const { topics } = await admin.fetchTopicMetadata({
          topics: [`${prefix}grantline.grants.v1`, `${prefix}grantline.tokens.v1`],
        });
        // the metadata lists topics in no particular order
        const partitions = Object.fromEntries(topics.map((t) => [t.name, t.partitions.length]));
        expect(partitions).toEqual({
          [`${prefix}grantline.grants.v1`]: 3,
          [`${prefix}grantline.tokens.v1`]: 2,
        });
      } finally {
        await admin.disconnect();
      }
      // SIGTERM reaches the workers through the first process, which exits 0 once they have stopped
      const workers = childrenOf(started.child.pid!);
      expect(await stop(started), started.output()).toBe(0);
      expect(workers.filter(alive)).toEqual([]);

      // a worker that dies takes the service down with it (exit 1), for the orchestrator to restart whole
      const again = startAsImage(app, serviceEnv, ['authorization']);
      running.push(again);
      expect(await healthy(app, port, again, 120_000), again.output()).toBe(true);
      const [victim, other] = childrenOf(again.child.pid!);
      process.kill(victim!, 'SIGKILL');
      expect(await again.exited, again.output()).toBe(1);
      expect(again.output()).toContain(`worker ${victim} exited (SIGKILL); stopping the others`);
      await eventually(() => (alive(other!) ? undefined : true), { what: 'the other worker to stop' });
    }, 300_000);
  });
});
