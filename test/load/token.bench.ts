import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import { databaseUrlFor, freePort, freePorts, resolveInfrastructure, uniqueName } from '@grantline/testing';
import autocannon from 'autocannon';
import pg from 'pg';
import { measuredRun, perRequest } from './cpu.ts';
import { childProcesses } from './processes.ts';
import { alternated, fmt, setting, settingList } from './stats.ts';

/**
 * pnpm bench:token — the token endpoint (client_credentials, client_secret_basic) of node-oidc-provider
 * beside Grantline in both modes: distributed (`pnpm start:services`: a process per service on
 * Postgres, Kafka, Redis) and embedded (`pnpm start`: one process on PGlite). Same client metadata,
 * same load, warm-up first (BENCH_WARMUP_SECONDS, default 10), one system loaded at a time and each
 * Grantline mode running alone, only 2xx counted.
 * Measured runs alternate (peer, Grantline, then Grantline, peer, ...; BENCH_ROUNDS each, default 3) and
 * the median run of each side is reported. BENCH_SYNCHRONOUS_COMMIT=off (diagnosis only),
 * BENCH_CONCURRENCY (default `10,50`), BENCH_SECONDS (default 10), BENCH_MODES (default
 * `distributed,distributed-2,embedded`; `distributed-2` is the distributed stack with two token
 * processes sharing its port, GRANTLINE_WORKERS=2).
 */
const seconds = setting('BENCH_SECONDS', 10);
const warmUpSeconds = setting('BENCH_WARMUP_SECONDS', 10);
const modes = (process.env.BENCH_MODES ?? 'distributed,distributed-2,embedded')
  .split(',')
  .map((m) => m.trim());
const rounds = setting('BENCH_ROUNDS', 3, { integer: true });
const concurrencies = settingList('BENCH_CONCURRENCY', '10,50', { integer: true });
const { children, spawnTs } = childProcesses();
const adminToken = 'bench-admin-token-0123456789abcdefghijklmnop';
const kek = 'q'.repeat(43);

interface Target {
  name: string;
  tokenUrl: string;
  registerUrl: string;
  adminUrl: string;
  /** AccessTokenIssued events recorded so far (undefined while the embedded database is in use) */
  issued(): Promise<number | undefined>;
  close(): Promise<void>;
}

const { infra, stop } = await resolveInfrastructure({ steadyState: true });
const database = uniqueName('bench');
const dataDir = mkdtempSync(join(tmpdir(), 'grantline-bench-'));

/**
 * BENCH_SYNCHRONOUS_COMMIT=off: the distributed mode's database commits without waiting for the WAL
 * flush, to show what the fsync behind every recorded token costs. A diagnosis, never a durable figure.
 */
const synchronousCommit = process.env.BENCH_SYNCHRONOUS_COMMIT === 'off' ? 'off' : 'on';

/** Grantline's database, made before its services start, with the commit setting they run under. */
const prepareDatabase = async (name: string) => {
  if (synchronousCommit === 'on') return; // start-services creates it, with the server's setting
  const admin = new pg.Client({ connectionString: infra.databaseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.query(`ALTER DATABASE ${name} SET synchronous_commit TO off`);
  } finally {
    await admin.end();
  }
};

const distributed = async (tokenWorkers = 1): Promise<Target> => {
  await prepareDatabase(`${database}_${tokenWorkers}`);
  // the gateway and the five services behind it, then the management gateway and the five services'
  // management ports (scripts/start-services.ts)
  const base = await freePorts(12);
  const managementBase = base + 6;
  const child = await spawnTs(
    'scripts/start-services.ts',
    {
      DATABASE_URL: infra.databaseUrl,
      KAFKA_BROKERS: infra.kafkaBrokers.join(','),
      REDIS_URL: infra.redisUrl,
      GRANTLINE_BASE_PORT: String(base),
      GRANTLINE_MANAGEMENT_BASE_PORT: String(managementBase),
      GRANTLINE_ADMIN_TOKEN: adminToken,
      GRANTLINE_KEY_ENCRYPTION_KEY: kek,
      LOG_LEVEL: 'warn',
      GRANTLINE_TOKEN_WORKERS: String(tokenWorkers),
      GRANTLINE_DATABASE: `${database}_${tokenWorkers}`,
      KAFKA_TOPIC_PREFIX: `${database}_${tokenWorkers}.`,
    },
    'Grantline is running',
  );
  const db = new pg.Pool({
    connectionString: databaseUrlFor(infra.databaseUrl, `${database}_${tokenWorkers}`),
  });
  return {
    name:
      tokenWorkers === 1 ? 'grantline distributed' : `grantline distributed, ${tokenWorkers} token processes`,
    registerUrl: `http://127.0.0.1:${base}/oauth2/register`,
    adminUrl: `http://127.0.0.1:${managementBase}/admin`,
    // the token service's own port, not the development gateway: the benchmark measures the service
    tokenUrl: `http://127.0.0.1:${base + 3}/oauth2/token`,
    issued: async () =>
      Number(
        (await db.query(`SELECT count(*) AS n FROM token.events WHERE type = 'AccessTokenIssued'`)).rows[0].n,
      ),
    close: async () => {
      await db.end();
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
};

const embedded = async (): Promise<Target> => {
  const [port, managementPort] = [await freePort(), await freePort()];
  const child = await spawnTs(
    'packages/server/src/main.ts',
    {
      PORT: String(port),
      MANAGEMENT_PORT: String(managementPort),
      GRANTLINE_DATA_DIR: dataDir,
      GRANTLINE_DEMO: 'false',
      GRANTLINE_ADMIN_TOKEN: adminToken,
      GRANTLINE_KEY_ENCRYPTION_KEY: kek,
      LOG_LEVEL: 'warn',
    },
    'Grantline is running',
  );
  const origin = `http://127.0.0.1:${port}`;
  return {
    name: 'grantline embedded',
    registerUrl: `${origin}/oauth2/register`,
    adminUrl: `http://127.0.0.1:${managementPort}/admin`,
    tokenUrl: `${origin}/oauth2/token`,
    issued: async () => undefined,
    close: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
};

/** The same client on every system: client_credentials, one scope, one resource. */
const registerClient = async (target: Target) => {
  const json = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
  await fetch(`${target.adminUrl}/scopes`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ name: 'api.read', description: 'Read the API' }),
  });
  const { initial_access_token } = (await (
    await fetch(`${target.adminUrl}/initial-access-tokens`, { method: 'POST', headers: json, body: '{}' })
  ).json()) as { initial_access_token: string };
  const client = (await (
    await fetch(target.registerUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${initial_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_types: ['client_credentials'],
        scope: 'api.read',
        resources: ['https://api.example.com'],
      }),
    })
  ).json()) as { client_id: string; client_secret: string };
  const authorization = `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`;
  // the client may take a moment to reach the token service's projection
  for (let i = 0; i < 100; i++) {
    const res = await fetch(target.tokenUrl, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    if (res.status === 200) break;
    await sleep(50);
  }
  return { ...client, authorization };
};

const load = async (url: string, authorization: string, connections: number, duration: number) => {
  const result = await autocannon({
    url,
    method: 'POST',
    connections,
    duration,
    headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  return {
    rps: result['2xx'] / duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ok: result['2xx'],
    errors: result.non2xx + result.errors + result.timeouts,
  };
};

type Measured = Awaited<ReturnType<typeof load>> & {
  cpu: Map<string, number>;
  tailMs: number;
  recorded?: number;
};

const start = (mode: string): Promise<Target> => {
  if (mode === 'distributed') return distributed();
  if (mode === 'distributed-2') return distributed(2);
  if (mode === 'embedded') return embedded();
  throw new Error(`BENCH_MODES: unknown mode ${mode} (distributed, distributed-2, embedded)`);
};

const targets: Target[] = [];
try {
  // the peer's own client, shaped like a Grantline registration (its secret 256 bits, base64url)
  const peerClient = {
    client_id: `peer-${randomBytes(12).toString('base64url')}`,
    client_secret: randomBytes(32).toString('base64url'),
  };
  const peerPort = await freePort();
  await spawnTs(
    'test/load/oidc-provider-peer.ts',
    { PORT: String(peerPort), CLIENT_ID: peerClient.client_id, CLIENT_SECRET: peerClient.client_secret },
    'ready',
  );
  const peerUrl = `http://127.0.0.1:${peerPort}/token`;
  const peerAuthorization = `Basic ${Buffer.from(`${peerClient.client_id}:${peerClient.client_secret}`).toString('base64')}`;

  // say how durable the distributed mode's commits are: a figure taken with fsync off is not a durable one
  const settings = new pg.Client({ connectionString: infra.databaseUrl });
  await settings.connect();
  const durability = (
    await settings.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit') ORDER BY name`,
    )
  ).rows
    .map((r) => `${r.name}=${r.setting}`)
    .join(', ');
  await settings.end();
  console.log(
    `token endpoint, client_credentials + client_secret_basic, ${seconds} s per run after ${warmUpSeconds} s of warm-up` +
      ' (autocannon, same machine; only 2xx counted). Each Grantline mode runs alone, started before and stopped' +
      ` after its runs; at each concurrency the peer and Grantline take turns, ${rounds} runs each (peer first, then` +
      ' Grantline first, ...), each alone while the other idles, and the median run of each is reported. Both run with' +
      ` NODE_ENV=production; the distributed mode's Postgres has ${durability}` +
      (synchronousCommit === 'off'
        ? ', but its database has synchronous_commit=off (BENCH_SYNCHRONOUS_COMMIT=off: a diagnosis of what the' +
          ' commit fsync costs, not a durable figure).'
        : '.'),
  );
  for (const mode of modes) {
    const target = await start(mode);
    targets.push(target);
    const client = await registerClient(target);
    let ok = 0;
    for (const connections of concurrencies) {
      // warm-up, each system alone; Grantline's first, so that its consumers have drained what the
      // warm-up recorded by the time the peer is measured (a backlog would take the peer's CPU)
      await load(target.tokenUrl, client.authorization, connections, warmUpSeconds);
      await load(peerUrl, peerAuthorization, connections, warmUpSeconds);
      const measurePeer = (): Promise<Measured> =>
        measuredRun(() => load(peerUrl, peerAuthorization, connections, seconds));
      const measureGrantline = async (): Promise<Measured> => {
        const before = (await target.issued()) ?? 0;
        // counted once the machine is quiet again: every request answered has had its event committed
        const run = await measuredRun(() =>
          load(target.tokenUrl, client.authorization, connections, seconds),
        );
        const after = await target.issued();
        ok += run.ok;
        return { ...run, ...(after !== undefined && { recorded: after - before }) };
      };
      const {
        medians: [peer, result],
        runs,
      } = await alternated(rounds, [measurePeer, measureGrantline], (r) => r.rps);
      const all = (side: 0 | 1) => runs[side].map((r) => fmt(r.rps, 0)).join(', ');
      const recorded = runs[1].reduce((n, r) => n + (r.recorded ?? 0), 0);
      const answered = runs[1].reduce((n, r) => n + r.ok, 0);
      console.log(
        [
          `concurrency ${connections}, ${target.name} (median of ${rounds} alternated runs each):`,
          `  node-oidc-provider ${fmt(peer.rps, 0).padStart(6)} tokens/s  p50 ${fmt(peer.p50)} ms  p99 ${fmt(peer.p99)} ms  errors ${peer.errors}  (runs ${all(0)})`,
          `  grantline          ${fmt(result.rps, 0).padStart(6)} tokens/s  p50 ${fmt(result.p50)} ms  p99 ${fmt(result.p99)} ms  errors ${result.errors}  (runs ${all(1)})` +
            (result.recorded !== undefined
              ? `\n    ${recorded}/${answered} issued tokens recorded as events in these runs`
              : ''),
          `  CPU per token, node-oidc-provider's median run: ${perRequest(peer.cpu, peer.ok)}`,
          `  CPU per token, grantline's median run: ${perRequest(result.cpu, result.ok)}` +
            ` (counted until the machine was quiet again, ${fmt(result.tailMs / 1_000, 2)} s after the run)`,
          `  ratio to node-oidc-provider ${fmt(result.rps / peer.rps, 2)}x` +
            (connections === 50 && target.name.startsWith('grantline distributed')
              ? `  (target >= 1.5x: ${result.rps / peer.rps >= 1.5 ? 'met' : 'NOT met'}; p99 < 25 ms: ${result.p99 < 25 ? 'met' : 'NOT met'})`
              : ''),
        ].join('\n'),
      );
    }
    await target.close();
    // the embedded database can be read once its process is gone: every issued token is an event there too
    if (mode === 'embedded') {
      const db = await PGlite.create({ dataDir: join(dataDir, 'pglite') });
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM token.events WHERE type = 'AccessTokenIssued'`,
      );
      await db.close();
      console.log(
        `  embedded: ${rows[0]!.n} AccessTokenIssued events recorded for ${ok} tokens answered 2xx in the measured runs (plus warm-ups)`,
      );
    }
  }
} finally {
  for (const target of targets) await target.close().catch(() => {});
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(
    children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)),
  );
  const admin = new pg.Client({ connectionString: infra.databaseUrl });
  await admin.connect();
  for (const workers of [1, 2])
    await admin.query(`DROP DATABASE IF EXISTS ${database}_${workers} WITH (FORCE)`).catch(() => {});
  await admin.end();
  rmSync(dataDir, { recursive: true, force: true });
  await stop();
}
