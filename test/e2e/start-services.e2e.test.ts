import { randomBytes } from 'node:crypto';
import { databaseUrlFor, freePorts, portOpen, spawnScript, uniqueName } from '@grantline/testing';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { registryAdmin } from './registry-admin.ts';
import { basic } from './stack.ts';

/**
 * `pnpm start:services` as a user runs it: every service its own process behind the development
 * gateway, one origin in the discovery document, the issuer printed, Ctrl-C stops all.
 */
describe('pnpm start:services', () => {
  it('starts every service as its own process behind one origin, issues a token through it, and stops cleanly on SIGTERM', async () => {
    const infra = inject('infra');
    // the gateway, the five services; the management gateway, the five services' management listeners
    const base = await freePorts(12);
    const management = base + 6;
    const database = uniqueName('start');
    const adminToken = randomBytes(32).toString('base64url');
    const started = spawnScript('scripts/start-services.ts', {
      DATABASE_URL: infra.databaseUrl,
      KAFKA_BROKERS: infra.kafkaBrokers.join(','),
      REDIS_URL: infra.redisUrl,
      GRANTLINE_BASE_PORT: String(base),
      GRANTLINE_MANAGEMENT_BASE_PORT: String(management),
      GRANTLINE_DATABASE: database,
      GRANTLINE_ADMIN_TOKEN: adminToken,
      KAFKA_TOPIC_PREFIX: `${uniqueName('start')}.`,
      LOG_LEVEL: 'warn',
    });
    const pool = new pg.Pool({ connectionString: databaseUrlFor(infra.databaseUrl, database), max: 2 });
    const origin = `http://127.0.0.1:${base}`;
    try {
      const deadline = Date.now() + 90_000;
      // the banner may arrive in several writes: wait for its endpoint lines, not only its first line
      const banner = () =>
        started.output().includes('Grantline is running') && started.output().includes('token: ');
      while (!banner()) {
        if (Date.now() > deadline || started.child.exitCode !== null)
          throw new Error(`services did not start; output:\n${started.output().slice(-2_000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(started.output()).toContain(`Issuer: ${origin}`);
      expect(started.output()).toContain(`token:         ${origin}/oauth2/token`);

      // the discovery document names one origin: the gateway's
      const meta = (await (await fetch(`${origin}/.well-known/oauth-authorization-server`)).json()) as Record<
        string,
        string
      >;
      expect(meta.issuer).toBe(origin);
      expect(meta).toMatchObject({
        authorization_endpoint: `${origin}/oauth2/authorize`,
        token_endpoint: `${origin}/oauth2/token`,
        jwks_uri: `${origin}/oauth2/jwks`,
        registration_endpoint: `${origin}/oauth2/register`,
        grant_management_endpoint: `${origin}/oauth2/grants`,
        introspection_endpoint: `${origin}/oauth2/introspect`,
      });
      const endpoints = Object.entries(meta).filter(
        ([name]) => name === 'issuer' || name.endsWith('_endpoint') || name === 'jwks_uri',
      );
      expect(new Set(endpoints.map(([, url]) => new URL(url).origin))).toEqual(new Set([origin]));

      // the admin API is on the management gateway, which it prints; not on the public origin
      expect(started.output()).toContain(`admin API:     http://127.0.0.1:${management}/admin`);
      expect((await fetch(`${origin}/admin/scopes`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${management}/admin/scopes`)).status).toBe(401);
      expect(
        (await fetch(`http://127.0.0.1:${management}/admin/keys/rotate`, { method: 'POST' })).status,
      ).toBe(401);
      // the admin's revocations reach the consent service through the management gateway
      const unknownSubject = await fetch(
        `http://127.0.0.1:${management}/admin/revocations/subjects/usr_nobody`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${adminToken}` },
        },
      );
      expect(unknownSubject.status).toBe(404);
      expect(await unknownSubject.json()).toMatchObject({ detail: 'unknown subject usr_nobody' });
      // each service's own management listener still serves /metrics and the detailed /readyz
      expect((await fetch(`http://127.0.0.1:${management + 3}/metrics`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${management + 2}/readyz`)).status).toBe(200);

      // a client registered and a token issued through the one origin, signed by a key its jwks_uri serves
      const registry = registryAdmin({
        issuer: origin,
        registryUrl: origin,
        registryManagementUrl: `http://127.0.0.1:${management}`,
        adminToken,
        pool,
      });
      await registry.defineScopes({ 'ledger.read': 'Read the ledger' });
      const client = await registry.register({ grant_types: ['client_credentials'], scope: 'ledger.read' });
      const res = await fetch(meta.token_endpoint!, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: basic(client.client_id, client.client_secret!),
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'ledger.read' }).toString(),
      });
      expect(res.status).toBe(200);
      const token = (await res.json()) as { access_token: string; token_type: string; scope: string };
      expect(token).toMatchObject({ token_type: 'Bearer', scope: 'ledger.read' });
      const { payload } = await jwtVerify(token.access_token, createRemoteJWKSet(new URL(meta.jwks_uri!)), {
        issuer: origin,
      });
      expect(payload.client_id).toBe(client.client_id);
    } finally {
      started.child.kill('SIGTERM');
      await pool.end();
    }
    expect(await started.exited).toBe(0);
    for (const port of [base, base + 1, management, management + 1])
      expect(await portOpen(port), `port ${port}`).toBe(false);
    const admin = new pg.Client({ connectionString: infra.databaseUrl });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  }, 150_000);
});
