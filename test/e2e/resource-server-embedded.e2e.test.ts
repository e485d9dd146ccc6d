import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EmbeddedServer, startEmbedded } from '@grantline/server';
import { freePort } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Agent, redeem, runFlow, type Tenant } from './flow.ts';
import { basic, type Stack } from './stack.ts';

/**
 * `pnpm example:resource-server` as a resource team runs it, against the embedded mode (`pnpm
 * start`: no broker, so the example subscribes to the HTTP revocation stream): it registers itself
 * with the admin token, prints its URL once its deny-list is bootstrapped, and stops honouring a
 * disconnected organisation, then a grant deleted through Grant Management, within a second (item 35).
 */
describe('the example invoices API against the embedded mode', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'grantline-rs-embedded-'));
  let server: EmbeddedServer;
  let example: ChildProcess;
  let apiUrl: string;
  let stack: Stack;
  let tenant: Tenant;

  /** starts the root script in a process group of its own; resolves with the URL it prints */
  const startExample = (env: Record<string, string>) =>
    new Promise<string>((resolve, reject) => {
      const { KAFKA_BROKERS: _ignored, ...inherited } = process.env;
      example = spawn('npx', ['-y', 'pnpm@10.34.9', '--silent', 'example:resource-server'], {
        env: { ...inherited, ...env },
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const printed = /invoices API on (http:\/\/\S+\/)/.exec(output);
        if (printed) resolve(printed[1]!);
      };
      example.stdout!.on('data', onData);
      example.stderr!.on('data', onData);
      example.on('exit', (code) => reject(new Error(`the example exited (${code}): ${output}`)));
    });

  beforeAll(async () => {
    const port = await freePort();
    server = await startEmbedded({
      GRANTLINE_DATA_DIR: dataDir,
      PORT: String(port),
      MANAGEMENT_PORT: '0',
      GRANTLINE_ISSUER: `http://127.0.0.1:${port}`,
      LOG_LEVEL: 'silent',
      PASSWORD_SCRYPT_N: '16384',
    });
    const { adminToken } = JSON.parse(readFileSync(server.secretsFile, 'utf8')) as { adminToken: string };
    apiUrl = await startExample({
      GRANTLINE_ISSUER: server.issuer,
      GRANTLINE_MANAGEMENT_URL: server.managementUrl,
      GRANTLINE_ADMIN_TOKEN: adminToken,
      PORT: String(await freePort()),
    });
    // an app whose tokens are for the example: registered with its URL among its resources
    const iat = await fetch(`${server.managementUrl}/admin/initial-access-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ description: 'test' }),
    });
    const { initial_access_token } = (await iat.json()) as { initial_access_token: string };
    const redirectUri = 'https://app.example/cb';
    const registered = await fetch(`${server.url}/oauth2/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${initial_access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: 'Ledger App',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'invoices.read',
        resources: [apiUrl],
      }),
    });
    expect(registered.status).toBe(201);
    const client = (await registered.json()) as { client_id: string; client_secret: string };
    stack = { issuer: server.issuer, tokenUrl: server.url, consentUrl: server.url } as unknown as Stack;
    const seed = server.demo!;
    tenant = {
      organisations: seed.organisations,
      user: seed.user,
      client: { ...client, redirect_uri: redirectUri },
      scopes: ['invoices.read'],
    };
  }, 180_000);
  afterAll(async () => {
    if (example?.pid && example.exitCode === null) process.kill(-example.pid, 'SIGTERM');
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const invoices = (token: string, organisation: string) =>
    fetch(`${apiUrl}organisations/${organisation}/invoices`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(5_000),
    });
  const rejectedWithin = async (token: string, organisation: string) => {
    const started = Date.now();
    while ((await invoices(token, organisation)).status === 200) {
      if (Date.now() - started > 1_000) throw new Error('still served after 1 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const res = await invoices(token, organisation);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    return Date.now() - started;
  };
  const disconnect = async (agent: Agent, path: string) => {
    const listed = await agent.request(`${stack.issuer}/account/api/connections`);
    const { csrf_token } = JSON.parse(listed.text) as { csrf_token: string };
    return agent.request(`${stack.issuer}/account/api/connections${path}`, {
      method: 'DELETE',
      headers: { origin: stack.issuer, 'x-csrf-token': csrf_token },
    });
  };

  it('item 35: an organisation disconnected on the account API, then the grant deleted through Grant Management, are refused within 1 s', async () => {
    const [acme, globex] = tenant.organisations.map((o) => o.id) as [string, string];
    const flow = await runFlow(stack, tenant, { organisations: [acme, globex] });
    const tokens = await redeem(stack, tenant, flow.code!, flow.verifier);
    expect(tokens.status).toBe(200);
    const { access_token, grant_id } = tokens.body as { access_token: string; grant_id: string };
    expect((await invoices(access_token, acme)).status).toBe(200);
    expect((await invoices(access_token, globex)).status).toBe(200);

    const org = await disconnect(
      flow.agent,
      `/${tenant.client.client_id}/grants/${grant_id}/organisations/${globex}`,
    );
    expect(org.status).toBe(204);
    expect(await rejectedWithin(access_token, globex)).toBeLessThan(1_000);
    expect((await invoices(access_token, acme)).status).toBe(200);

    // Grant Management: the app itself deletes the grant
    const deleted = await fetch(`${server.url}/oauth2/grants/${grant_id}`, {
      method: 'DELETE',
      headers: { authorization: basic(tenant.client.client_id, tenant.client.client_secret!) },
    });
    expect(deleted.status).toBe(204);
    expect(await rejectedWithin(access_token, acme)).toBeLessThan(1_000);
  });
});
