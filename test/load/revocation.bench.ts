import { resolveInfrastructure, uniqueName } from '@grantline/testing';
import pg from 'pg';
import { childProcesses } from './processes.ts';
import { measureChecks } from './revocation-checks.ts';
import { userSession } from './revocation-grants.ts';
import { measureIntrospection } from './revocation-introspection.ts';
import { measurePropagation, printPropagation } from './revocation-propagation.ts';
import { type RevocationStack, startRevocationStack } from './revocation-stack.ts';

/**
 * pnpm bench:revocation — what a disconnection costs and how fast it reaches a resource server, on
 * the distributed services and the example invoices API (issue 9):
 *   1. propagation from the user's disconnect request to the API rejecting the token, under a paced
 *      background load of client_credentials token requests;
 *   2. token checks/s of the resource-server SDK against bare `jose` on the same live tokens;
 *   3. introspections/s with p99, Grantline against node-oidc-provider, each alone.
 * BENCH_REVOCATION_SAMPLES (default 1000), BENCH_REVOCATION_MAX_SECONDS (sampling stops after, with
 * what it has, default 3600), BENCH_REVOCATION_RATE (background tokens/s, default 500),
 * BENCH_REVOCATION_ORGANISATIONS (per grant, default 10), BENCH_REVOCATION_TOKENS (distinct tokens
 * for 2 and 3, default 100), BENCH_CHECK_ITERATIONS (per round, default 20000), BENCH_SECONDS
 * (each introspection run, default 10), BENCH_ROUNDS (introspection runs per side, alternated,
 * default 3), BENCH_WARMUP_SECONDS (default 10), BENCH_PARTS (default 1,2,3).
 */
const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const samples = env('BENCH_REVOCATION_SAMPLES', 1_000);
const maxSeconds = env('BENCH_REVOCATION_MAX_SECONDS', 3_600);
const rate = env('BENCH_REVOCATION_RATE', 500);
const organisations = env('BENCH_REVOCATION_ORGANISATIONS', 10);
const tokens = env('BENCH_REVOCATION_TOKENS', 100);
const iterations = env('BENCH_CHECK_ITERATIONS', 20_000);
const seconds = env('BENCH_SECONDS', 10);
const warmUpSeconds = env('BENCH_WARMUP_SECONDS', 10);
const rounds = env('BENCH_ROUNDS', 3);
const parts = new Set((process.env.BENCH_PARTS ?? '1,2,3').split(',').map((p) => p.trim()));

const { children, spawnTs } = childProcesses();
const { infra, stop } = await resolveInfrastructure({ steadyState: true });
const database = uniqueName('bench');
let s: RevocationStack | undefined;
try {
  s = await startRevocationStack(infra, spawnTs, organisations, database);
  console.log(
    `bench:revocation: Grantline distributed (5 services, Postgres, Kafka, Redis) and the example invoices API` +
      ` (its own process, @grantline/resource-server on the revocations topic); load generators on the same machine`,
  );
  if (parts.has('1')) {
    const result = await measurePropagation(s, children, { samples, rate, timeoutMs: 5_000, maxSeconds });
    printPropagation(result, { samples, rate });
  }
  if (parts.has('2') || parts.has('3')) {
    // tokens of their own (part 1 revoked its grants), each of a grant of its own, all live
    const connections = await userSession(s).connect(tokens);
    if (parts.has('2')) await measureChecks(s, connections, { iterations, rounds: 3 });
    if (parts.has('3'))
      await measureIntrospection(s, connections, spawnTs, {
        seconds,
        warmUpSeconds,
        rounds,
        concurrencies: [10, 50],
      });
  }
} finally {
  await s?.pool.end();
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await Promise.all(
    children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : undefined)),
  );
  const admin = new pg.Client({ connectionString: infra.databaseUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
  await admin.end();
  await stop();
}
