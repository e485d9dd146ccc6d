import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { serviceFor } from '@grantline/server';
import {
  databaseUrlFor,
  eventually,
  freePort,
  freePorts,
  resolveInfrastructure,
  uniqueName,
} from '@grantline/testing';
import pg from 'pg';
import { Agent, createTenant, redeem, runFlow, type Tenant } from '../e2e/flow.ts';
import { registryAdmin } from '../e2e/registry-admin.ts';
import type { Stack } from '../e2e/stack.ts';
import { measuredRun, perRequest } from './cpu.ts';
import { isJwt, peerRefreshToken, runPeer } from './flow-peer.ts';
import { childProcesses } from './processes.ts';
import { alternated, fmt, latencyRecorder, setting } from './stats.ts';

const seconds = setting('BENCH_SECONDS', 10);
const warmUpSeconds = setting('BENCH_WARMUP_SECONDS', 10);
const rounds = setting('BENCH_ROUNDS', 3, { integer: true });
const basicAuth = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

const peerPortVariable = process.env.FLOW_BENCH_PEER_PORT;
if (peerPortVariable) await runPeer(Number(peerPortVariable));
else await main();

async function main() {
  const { children, spawnTs } = childProcesses();

  const { infra, stop } = await resolveInfrastructure({ steadyState: true });
  const database = uniqueName('bench');
  let db: pg.Pool | undefined;
  try {
    // the gateway and the four services behind it, then the management gateway and the five
    // services' management ports (scripts/start-services.ts)
    const base = await freePorts(12);
    const managementBase = base + 6;
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
        // one user signs in from one address many times at once: the brute-force limits count attempts
        // in flight, so lift them (the benchmark measures the flow, not the lock-out)
        LOGIN_FAILURES_PER_USERNAME: '1000000',
        LOGIN_FAILURES_PER_ADDRESS: '1000000',
        LOGIN_FAILURES_GLOBAL: '1000000',
        LOG_LEVEL: 'warn',
      },
      'Grantline is running',
    );
    // flows go through the one origin, as a browser and a client see it
    const issuer = `http://127.0.0.1:${base}`;
    const [registryUrl, tokenOrigin, consentUrl] = [issuer, issuer, issuer];
    // the refresh runs hit the token service's own port: they measure the service, not the development gateway
    const tokenService = `http://127.0.0.1:${base + 3}`;
    db = new pg.Pool({ connectionString: databaseUrlFor(infra.databaseUrl, database) });
    const pool = db;
    // the fields of an in-process Stack that the scripted flow in test/e2e/flow.ts uses, here for the
    // services running as separate processes
    const stack = {
      issuer,
      registryUrl,
      tokenUrl: tokenOrigin,
      consentUrl,
      db: { pool },
      ...registryAdmin({
        issuer,
        registryUrl,
        registryManagementUrl: `http://127.0.0.1:${managementBase}`,
        adminToken,
        pool,
      }),
    } as unknown as Stack;
    const tenant: Tenant = await createTenant(stack);
    const client = tenant.client as { client_id: string; client_secret: string };

    // where a flow's time goes: total time per step (service and path), while `timing` is on
    const steps = new Map<string, number>();
    let timing = false;
    const timed = async <T>(key: string, run: () => Promise<T>) => {
      const start = performance.now();
      const result = await run();
      if (timing) steps.set(key, (steps.get(key) ?? 0) + performance.now() - start);
      return result;
    };
    const stepKey = (method: string, url: string) => {
      const u = new URL(url);
      return `${u.origin === issuer ? serviceFor(u.pathname) : u.host} ${method} ${u.pathname}`;
    };
    class TimedAgent extends Agent {
      override request(url: string, init: Parameters<Agent['request']>[1] = {}) {
        return timed(stepKey(init.method ?? (init.form ? 'POST' : 'GET'), url), () =>
          super.request(url, init),
        );
      }
    }

    /** One complete flow with a fresh user agent; resolves with the refresh token of the new grant. */
    const grantlineFlow = async () => {
      const flow = await runFlow(stack, tenant, {
        agent: new TimedAgent(),
        params: { grant_management_action: 'create' },
      });
      if (!flow.code || !flow.consentShown)
        throw new Error(
          `flow ended at ${flow.step.status} ${flow.location?.href ?? flow.step.text.slice(0, 200)} (consent shown: ${flow.consentShown})`,
        );
      const tokens = await timed(stepKey('POST', `${tokenOrigin}/oauth2/token`), () =>
        redeem(stack, tenant, flow.code!, flow.verifier),
      );
      if (tokens.status !== 200 || !isJwt(tokens.body.access_token) || !tokens.body.refresh_token)
        throw new Error(`code exchange: ${tokens.status} ${JSON.stringify(tokens.body)}`);
      return tokens.body.refresh_token as string;
    };
    // every service has projected the user and client (createTenant); poll until a first flow succeeds
    await eventually(() => grantlineFlow().catch(() => undefined), { what: 'a first complete flow' });

    const peerPort = await freePort();
    await spawnTs(
      'test/load/flow.bench.ts',
      {
        FLOW_BENCH_PEER_PORT: String(peerPort),
        CLIENT_ID: client.client_id,
        CLIENT_SECRET: client.client_secret,
      },
      'ready',
    );
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const authorization = basicAuth(client.client_id, client.client_secret);

    /** The same kind of flow against the peer, through its development sign-in and consent pages. */
    const peerFlow = () => peerRefreshToken(peerUrl, client.client_id, authorization);

    /**
     * Closed-loop driver: `workers` loops, each running `op` back to back until the deadline; latency of
     * each completed op. A worker whose op fails with `fatal` stops (a broken refresh chain).
     */
    const drive = async (workers: number, durationSeconds: number, op: (worker: number) => Promise<void>) => {
      const latency = latencyRecorder();
      let ok = 0;
      let errors = 0;
      let firstError: string | undefined;
      const cpuBefore = process.cpuUsage();
      const start = performance.now();
      const deadline = start + durationSeconds * 1_000;
      await Promise.all(
        Array.from({ length: workers }, async (_, worker) => {
          while (performance.now() < deadline) {
            const t = performance.now();
            try {
              await op(worker);
              latency.recordMs(performance.now() - t);
              ok++;
            } catch (error) {
              errors++;
              firstError ??= error instanceof Error ? error.message : String(error);
              if ((error as { fatal?: boolean }).fatal) return;
            }
          }
        }),
      );
      const elapsed = (performance.now() - start) / 1_000;
      const cpu = process.cpuUsage(cpuBefore);
      return {
        rate: ok / elapsed,
        ok,
        errors,
        firstError,
        driverCpu: (cpu.user + cpu.system) / 1e6 / elapsed,
        ...latency.summary(),
      };
    };
    type Result = Awaited<ReturnType<typeof drive>>;
    const line = (name: string, unit: string, r: Result) =>
      `  ${name.padEnd(18)} ${fmt(r.rate, 1).padStart(8)} ${unit}  p50 ${fmt(r.p50)} ms  p99 ${fmt(r.p99)} ms  errors ${r.errors}` +
      `  (${r.ok} done; driver CPU ${fmt(r.driverCpu * 100, 0)}%)` +
      (r.firstError ? `\n    first error: ${r.firstError.slice(0, 300)}` : '');

    /** `count` refresh tokens from complete flows, 10 flows at a time. */
    const collect = async (count: number, flow: () => Promise<string>) => {
      const tokens: string[] = [];
      let started = 0;
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          while (started < count) {
            started++;
            tokens.push(await flow());
          }
        }),
      );
      return tokens;
    };

    console.log(
      `authorization code flows, Grantline (4 processes, Postgres, Kafka, Redis), scripted HTTP, ${seconds} s per run:\n` +
        '  authorize -> sign-in page -> POST sign-in -> consent page -> POST Allow -> complete -> code ->\n' +
        '  token exchange with PKCE; a fresh user agent (new sign-in) and a new grant per flow; node-oidc-provider\n' +
        '  through its development sign-in and consent pages, the same steps. Each side alone while the other idles:\n' +
        `  ${warmUpSeconds} s of warm-up each, then ${rounds} runs each in turns (peer first, then Grantline first, ...),\n` +
        '  the median run of each reported',
    );
    // BENCH_FLOW_PARTS=refresh: the refresh runs only (the flows' runs take minutes of scrypt)
    const flowRuns = process.env.BENCH_FLOW_PARTS === 'refresh' ? [] : [1, 10];
    const peerFlows = () => peerFlow().then(() => undefined);
    const grantlineFlows = () => grantlineFlow().then(() => undefined);
    if (flowRuns.length > 0) {
      // warm-up, each while the other is idle
      await drive(10, warmUpSeconds, peerFlows);
      await drive(10, warmUpSeconds, grantlineFlows);
    }
    const runs = (of: Result[]) => of.map((r) => fmt(r.rate, 1)).join(', ');
    for (const concurrency of flowRuns) {
      // the step times are those of every Grantline run, summed
      steps.clear();
      let flows = 0;
      const {
        medians: [p, r],
        runs: all,
      } = await alternated(
        rounds,
        [
          () => measuredRun(() => drive(concurrency, seconds, peerFlows)),
          () =>
            measuredRun(async () => {
              timing = true;
              const result = await drive(concurrency, seconds, grantlineFlows);
              timing = false;
              flows += result.ok + result.errors;
              return result;
            }),
        ],
        (x) => x.rate,
      );
      console.log(
        `concurrency ${concurrency}:\n${line('node-oidc-provider', 'flows/s', p)}  runs ${runs(all[0])}\n` +
          `${line('grantline', 'flows/s', r)}  runs ${runs(all[1])}\n` +
          `  ratio grantline/peer ${fmt(r.rate / p.rate, 2)}x (not the same work: the peer's development sign-in checks no password, Grantline's hashes it with scrypt, PASSWORD_SCRYPT_N)`,
      );
      const parts = [...steps].map(([key, total]) => `${key} ${fmt(total / Math.max(1, flows))}`);
      console.log(
        `    mean ms per flow, by request:\n      ${parts.slice(0, 4).join(', ')},\n      ${parts.slice(4).join(', ')}`,
      );
    }

    // refresh: fresh chains for every run (warm-ups included), obtained just before it: no run inherits long
    // families, and the peer's in-memory adapter (an LRU of 1,000 entries) has not evicted them yet
    // node:http with keep-alive rather than fetch: a third of the client CPU per request, which matters
    // when driver and servers share the machine's cores
    const keepAlive = new http.Agent({ keepAlive: true });
    const post = (url: string, body: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = http.request(
          url,
          {
            method: 'POST',
            agent: keepAlive,
            headers: {
              authorization,
              'content-type': 'application/x-www-form-urlencoded',
              'content-length': Buffer.byteLength(body),
            },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              text += chunk;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const refreshOp = (url: string, chains: string[]) => async (worker: number) => {
      const presented = chains[worker]!;
      const res = await post(url, `grant_type=refresh_token&refresh_token=${encodeURIComponent(presented)}`);
      const text = res.text;
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(text);
      } catch {}
      if (
        res.status !== 200 ||
        !isJwt(body.access_token) ||
        typeof body.refresh_token !== 'string' ||
        body.refresh_token === presented
      )
        // the chain's state is unknown now (a retry could be reuse): the worker stops
        throw Object.assign(new Error(`${res.status} ${text.slice(0, 200)}`), { fatal: true });
      chains[worker] = body.refresh_token;
    };
    const peer = { name: 'node-oidc-provider', url: `${peerUrl}/token`, flow: peerFlow };
    const grantline = { name: 'grantline', url: `${tokenService}/oauth2/token`, flow: grantlineFlow };
    const run = async (target: typeof peer, concurrency: number, duration: number) => {
      const chains = await collect(concurrency, target.flow);
      return measuredRun(() => drive(concurrency, duration, refreshOp(target.url, chains)));
    };

    console.log(
      `\nrefresh_token grant with rotation, client_secret_basic, JWT access tokens (ES256), ${seconds} s per run;\n` +
        '  one sequential chain per connection (node:http keep-alive driver, same for both); node-oidc-provider on its in-memory adapter;\n' +
        `  ${warmUpSeconds} s of warm-up each, then ${rounds} runs each in turns, each side alone, the median run reported`,
    );
    for (const concurrency of [10, 50]) {
      await run(peer, concurrency, warmUpSeconds);
      await run(grantline, concurrency, warmUpSeconds);
      const {
        medians: [p, g],
        runs: all,
      } = await alternated(
        rounds,
        [() => run(peer, concurrency, seconds), () => run(grantline, concurrency, seconds)],
        (x) => x.rate,
      );
      console.log(
        `concurrency ${concurrency} (median of ${rounds} alternated runs each):\n` +
          `${line(peer.name, 'refreshes/s', p)}  runs ${runs(all[0])}\n` +
          `${line(grantline.name, 'refreshes/s', g)}  runs ${runs(all[1])}\n` +
          `  ratio grantline/peer throughput ${fmt(g.rate / p.rate, 2)}x; target >= 1.0x: ${g.rate >= p.rate ? 'met' : 'NOT met'}` +
          `  (rotations per chain: grantline ~${fmt(g.ok / concurrency, 0)}, peer ~${fmt(p.ok / concurrency, 0)})\n` +
          `  CPU per refresh, node-oidc-provider's median run: ${perRequest(p.cpu, p.ok)}\n` +
          `  CPU per refresh, grantline's median run: ${perRequest(g.cpu, g.ok)}` +
          ` (counted until the machine was quiet again, ${fmt(g.tailMs / 1_000, 2)} s after the run)`,
      );
    }
  } finally {
    await db?.end();
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)),
    );
    const adminClient = new pg.Client({ connectionString: infra.databaseUrl });
    await adminClient.connect();
    await adminClient.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
    await adminClient.end();
    await stop();
  }
}
