import { freePorts, portOpen, spawnScript, uniqueName } from '@grantline/testing';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';

/** `pnpm start:services` as a user runs it: every service its own process, the issuer printed, Ctrl-C stops all. */
describe('pnpm start:services', () => {
  it('starts every service as its own process, serves discovery, and stops cleanly on SIGTERM', async () => {
    const infra = inject('infra');
    const base = await freePorts(8);
    const management = base + 4;
    const database = uniqueName('start');
    const started = spawnScript('scripts/start-services.ts', {
      DATABASE_URL: infra.databaseUrl,
      KAFKA_BROKERS: infra.kafkaBrokers.join(','),
      REDIS_URL: infra.redisUrl,
      GRANTLINE_BASE_PORT: String(base),
      GRANTLINE_MANAGEMENT_BASE_PORT: String(management),
      GRANTLINE_DATABASE: database,
      KAFKA_TOPIC_PREFIX: `${uniqueName('start')}.`,
      LOG_LEVEL: 'warn',
    });
    try {
      const deadline = Date.now() + 90_000;
      while (!started.output().includes('Grantline is running')) {
        if (Date.now() > deadline || started.child.exitCode !== null)
          throw new Error(`services did not start; output:\n${started.output().slice(-2_000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(started.output()).toContain(`Issuer: http://127.0.0.1:${base}`);
      const meta = (await (
        await fetch(`http://127.0.0.1:${base}/.well-known/oauth-authorization-server`)
      ).json()) as Record<string, string>;
      expect(meta.token_endpoint).toBe(`http://127.0.0.1:${base + 2}/oauth2/token`);
      expect((await fetch(`http://127.0.0.1:${base + 2}/oauth2/jwks`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${base + 1}/readyz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${base + 3}/readyz`)).status).toBe(200);
      // the admin API and metrics live on the management ports, which it prints
      expect(started.output()).toContain(`admin API:     http://127.0.0.1:${management + 1}/admin`);
      expect((await fetch(`http://127.0.0.1:${base + 1}/admin/scopes`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${management + 1}/admin/scopes`)).status).toBe(401);
      expect((await fetch(`http://127.0.0.1:${management + 2}/metrics`)).status).toBe(200);
      expect(meta.grant_management_endpoint).toBe(`http://127.0.0.1:${base + 3}/oauth2/grants`);
    } finally {
      started.child.kill('SIGTERM');
    }
    expect(await started.exited).toBe(0);
    expect(await portOpen(base)).toBe(false);
    expect(await portOpen(management)).toBe(false);
    const admin = new pg.Client({ connectionString: infra.databaseUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  }, 150_000);
});
