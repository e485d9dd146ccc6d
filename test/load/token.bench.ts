import { setTimeout as sleep } from 'node:timers/promises';
import { databaseUrlFor, freePort, freePorts, resolveInfrastructure, uniqueName } from '@grantline/testing';
import autocannon from 'autocannon';
import pg from 'pg';
import { childProcesses } from './processes.ts';
import { fmt } from './stats.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const { children, spawnTs } = childProcesses();

const { infra, stop } = await resolveInfrastructure();
const database = uniqueName('bench');
try {
  // four public ports, then the four management ports
  const base = await freePorts(8);
  const managementBase = base + 4;
  const adminToken = 'bench-admin-token-0123456789abcdefghijklmnop';
  await spawnTs(
    'scripts/start-services.ts',
    {
      DATABASE_URL: infra.databaseUrl,
      KAFKA_BROKERS: infra.kafkaBrokers.join(','),
      REDIS_URL: infra.redisUrl,
      GRANTLINE_BASE_PORT: String(base),
      GRANTLINE_MANAGEMENT_BASE_PORT: String(managementBase),
      GRANTLINE_DATABASE: database,
      KAFKA_TOPIC_PREFIX: `${database}.`,
      GRANTLINE_ADMIN_TOKEN: adminToken,
      GRANTLINE_KEY_ENCRYPTION_KEY: 'q'.repeat(43),
      LOG_LEVEL: 'warn',
    },
    'Grantline is running',
  );
  const registry = `http://127.0.0.1:${base + 1}`;
  const registryAdmin = `http://127.0.0.1:${managementBase + 1}/admin`;
  const tokenUrl = `http://127.0.0.1:${base + 2}/oauth2/token`;
  const json = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
  await fetch(`${registryAdmin}/scopes`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ name: 'api.read', description: 'Read the API' }),
  });
  const { initial_access_token } = (await (
    await fetch(`${registryAdmin}/initial-access-tokens`, { method: 'POST', headers: json, body: '{}' })
  ).json()) as { initial_access_token: string };
  const client = (await (
    await fetch(`${registry}/oauth2/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${initial_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_types: ['client_credentials'],
        scope: 'api.read',
        resources: ['https://api.example.com'],
      }),
    })
  ).json()) as { client_id: string; client_secret: string };

  const peerPort = await freePort();
  await spawnTs(
    'test/load/oidc-provider-peer.ts',
    { PORT: String(peerPort), CLIENT_ID: client.client_id, CLIENT_SECRET: client.client_secret },
    'ready',
  );
  const peerUrl = `http://127.0.0.1:${peerPort}/token`;

  const authorization = `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`;
  const load = async (url: string, connections: number, duration: number) => {
    const result = await autocannon({
      url,
      method: 'POST',
      connections,
      duration,
      headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    return {
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      ok: result['2xx'],
      errors: result.non2xx + result.errors + result.timeouts,
    };
  };
  // the client may take a moment to reach the token service's projection
  for (
    let i = 0;
    i < 100 &&
    (
      await fetch(tokenUrl, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      })
    ).status !== 200;
    i++
  )
    await sleep(50);

  const db = new pg.Pool({ connectionString: databaseUrlFor(infra.databaseUrl, database) });
  const issuedEvents = async () =>
    Number(
      (await db.query(`SELECT count(*) AS n FROM token.events WHERE type = 'AccessTokenIssued'`)).rows[0].n,
    );
  console.log(
    `token endpoint, client_credentials + client_secret_basic, ${seconds} s per run (autocannon, same machine)`,
  );
  const rows: string[] = [];
  for (const connections of [10, 50]) {
    await load(peerUrl, connections, 2); // warm-up
    await load(tokenUrl, connections, 2);
    const peer = await load(peerUrl, connections, seconds);
    const before = await issuedEvents();
    const grantline = await load(tokenUrl, connections, seconds);
    const recorded = (await issuedEvents()) - before;
    rows.push(
      `concurrency ${connections}:\n` +
        `  node-oidc-provider ${fmt(peer.rps, 0).padStart(6)} tokens/s  p50 ${fmt(peer.p50)} ms  p99 ${fmt(peer.p99)} ms  errors ${peer.errors}\n` +
        `  grantline          ${fmt(grantline.rps, 0).padStart(6)} tokens/s  p50 ${fmt(grantline.p50)} ms  p99 ${fmt(grantline.p99)} ms  errors ${grantline.errors}` +
        `  (${recorded}/${grantline.ok} issued tokens recorded as events)\n` +
        `  ratio grantline/peer throughput ${fmt(grantline.rps / peer.rps, 2)}x` +
        (connections === 50
          ? `  (target >= 1.5x: ${grantline.rps / peer.rps >= 1.5 ? 'met' : 'NOT met'}; p99 < 25 ms: ${grantline.p99 < 25 ? 'met' : 'NOT met'})`
          : ''),
    );
    console.log(rows[rows.length - 1]);
  }
  await db.end();
} finally {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(
    children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)),
  );
  const admin = new pg.Client({ connectionString: infra.databaseUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
  await admin.end();
  await stop();
}
