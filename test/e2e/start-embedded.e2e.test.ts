import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort, portOpen, repoRoot } from '@grantline/testing';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import * as oauth from 'oauth4webapi';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath, launchChromium } from './chromium.ts';

const executablePath = chromiumPath();
if (!executablePath)
  console.warn('start-embedded.e2e: SKIPPED, no Chromium found (set CHROMIUM_PATH, or install chromium)');

/** pnpm's own entry point: the one running this test, else the one npx keeps in its cache. */
const pnpmEntry = (): string | undefined => {
  const running = process.env.npm_execpath;
  if (running && /pnpm\.c?js$/.test(running)) return running;
  const cache = join(homedir(), '.npm', '_npx');
  if (!existsSync(cache)) return undefined;
  for (const dir of readdirSync(cache)) {
    const candidate = join(cache, dir, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
};
const pnpm = pnpmEntry();
if (!pnpm) console.warn('start-embedded.e2e: SKIPPED, pnpm not found (run the tests with `pnpm test`)');

/** What the distributed mode needs, and a bare machine lacks. */
const ABSENT =
  /^(java|javac|jshell|mvn|postgres|pg_ctl|pg_ctlcluster|initdb|psql|redis-server|redis-cli|docker|dockerd|kafka.*)$/;

/**
 * A bare machine, as far as `pnpm start` can tell: one directory on PATH with the system's tools
 * (sh, sed, ...) but none of java, Maven, Postgres, Redis or Docker, and a copy of node (pnpm puts
 * the running node's own directory on PATH, and /usr/bin, where node lives here, also holds java).
 * No DATABASE_URL, KAFKA_BROKERS or REDIS_URL.
 */
const bareMachine = (root: string) => {
  const bin = join(root, 'bin');
  mkdirSync(bin, { recursive: true });
  try {
    linkSync(process.execPath, join(bin, 'node'));
  } catch {
    copyFileSync(process.execPath, join(bin, 'node'));
  }
  for (const dir of ['/usr/local/bin', '/usr/bin', '/bin'])
    for (const name of existsSync(dir) ? readdirSync(dir) : [])
      if (!ABSENT.test(name) && !existsSync(join(bin, name))) symlinkSync(join(dir, name), join(bin, name));
  return { node: join(bin, 'node'), env: { HOME: process.env.HOME ?? root, PATH: bin, LANG: 'C.UTF-8' } };
};

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | string | null>;
}

const pnpmStart = (node: string, env: Record<string, string>): Started => {
  let output = '';
  // its own process group, so a signal reaches pnpm, tsx and the server as Ctrl-C would
  const child = spawn(node, [pnpm!, 'start'], {
    cwd: repoRoot,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => {
    output += d;
  });
  child.stderr!.on('data', (d) => {
    output += d;
  });
  // 'close', not 'exit': pnpm may end before the server it started, which still writes to the pipe
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('close', (code, signal) => resolve(signal ?? code)),
  );
  return { child, output: () => output, exited };
};

const running = async (started: Started, timeoutMs = 120_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!started.output().includes('Grantline is running')) {
    if (Date.now() > deadline || started.child.exitCode !== null)
      throw new Error(`pnpm start did not start; output:\n${started.output().slice(-3_000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

const stop = async (started: Started) => {
  if (started.child.exitCode === null && started.child.signalCode === null)
    process.kill(-started.child.pid!, 'SIGINT');
  const code = await started.exited;
  // pnpm ends by the signal it was sent; the server in it must have stopped cleanly first
  const clean = (code === 0 || code === 'SIGINT') && started.output().includes('Grantline stopped');
  if (!clean) console.error(`pnpm start exited with ${code}; output:\n${started.output().slice(-3_000)}`);
  return clean;
};

describe.skipIf(!executablePath || !pnpm)('pnpm start on a bare machine', () => {
  let root: string;
  let browser: Browser;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'grantline-bare-'));
    browser = await launchChromium(executablePath!);
  });
  afterAll(async () => {
    await browser?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('runs every service in one process on one origin, with nothing but node, and keeps its data across a restart', async () => {
    const machine = bareMachine(root);
    const port = await freePort();
    const dataDir = join(root, 'data');
    const env = { ...machine.env, PORT: String(port), MANAGEMENT_PORT: '0', GRANTLINE_DATA_DIR: dataDir };
    // what pnpm's scripts can reach: node and sh, none of what the distributed mode needs
    const reachable = execFileSync(
      machine.node,
      [
        pnpm!,
        'exec',
        'sh',
        '-c',
        'for c in java postgres pg_ctl redis-server docker mvn; do command -v $c; done; true',
      ],
      { cwd: repoRoot, env, encoding: 'utf8' },
    );
    expect(reachable.trim()).toBe('');
    expect(env).not.toHaveProperty('DATABASE_URL');

    const issuer = `http://localhost:${port}`;
    const first = pnpmStart(machine.node, env);
    let accessToken = '';
    let refreshToken = '';
    let grantId = '';
    let registered = { client_id: '', client_secret: '' };
    const demo = () =>
      JSON.parse(readFileSync(join(dataDir, 'demo.json'), 'utf8')) as {
        user: { username: string; password: string; id: string };
        organisations: { id: string; name: string }[];
        webClient: { client_id: string; client_secret: string };
      };
    const insecure = { [oauth.allowInsecureRequests]: true } as const;
    const discover = async () => {
      const url = new URL(issuer);
      return oauth.processDiscoveryResponse(
        url,
        await oauth.discoveryRequest(url, { algorithm: 'oauth2', ...insecure }),
      );
    };
    try {
      await running(first);
      // it prints the issuer, where the admin token is, and the demo's URL
      expect(first.output()).toContain(`issuer:        ${issuer}`);
      expect(first.output()).toContain(`secrets.json`);
      expect(first.output()).toContain(`${issuer}/demo`);
      expect(first.output()).toContain(`password "${demo().user.password}"`);
      const managementUrl = /admin API: +(http:\/\/\S+)\/admin/.exec(first.output())![1]!;

      // discovery: one origin for every endpoint
      const as = await discover();
      for (const endpoint of [
        as.authorization_endpoint,
        as.token_endpoint,
        as.jwks_uri,
        as.registration_endpoint,
      ])
        expect(new URL(endpoint!).origin).toBe(issuer);

      // RFC 7591 registration with an initial access token from the admin API, then client credentials
      const { adminToken } = JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')) as {
        adminToken: string;
      };
      const iat = await fetch(`${managementUrl}/admin/initial-access-tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ description: 'bare machine' }),
      });
      expect(iat.status).toBe(201);
      const { initial_access_token } = (await iat.json()) as { initial_access_token: string };
      const reg = await fetch(as.registration_endpoint!, {
        method: 'POST',
        headers: { authorization: `Bearer ${initial_access_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          client_name: 'Bare machine job',
          grant_types: ['client_credentials'],
          scope: 'invoices.read',
        }),
      });
      expect(reg.status).toBe(201);
      registered = (await reg.json()) as typeof registered;
      const cc = await oauth.processClientCredentialsResponse(
        as,
        { client_id: registered.client_id },
        await oauth.clientCredentialsGrantRequest(
          as,
          { client_id: registered.client_id },
          oauth.ClientSecretBasic(registered.client_secret),
          new URLSearchParams({ scope: 'invoices.read' }),
          insecure,
        ),
      );
      expect(decodeJwt(cc.access_token).client_id).toBe(registered.client_id);

      // the authorization code flow in a browser, through the demo page
      const page = await browser.newPage();
      await page.goto(`${issuer}/demo`);
      const demoCookie = async () =>
        (await page.context().cookies(`${issuer}/demo`)).find((c) => c.name === 'grantline_demo')?.value;
      const before = await demoCookie();
      expect(before).toBeTruthy();
      await page.getByRole('button', { name: 'Connect the demo app' }).click();
      await page.getByLabel('Username').fill(demo().user.username);
      await page.getByLabel('Password').fill(demo().user.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      const [acme, globex] = demo().organisations as [
        { name: string; id: string },
        { name: string; id: string },
      ];
      await page.getByLabel(acme.name).check();
      await page.getByLabel(globex.name).check();
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.waitForURL(`${issuer}/demo`);
      await page.getByRole('heading', { name: 'Token response' }).waitFor();
      // the tokens live under a new demo session id: one planted in the browser beforehand sees nothing
      expect(await demoCookie()).not.toBe(before);
      const shown = () =>
        page
          .locator('pre')
          .first()
          .textContent()
          .then((t) => JSON.parse(t!) as Record<string, string>);
      const tokens = await shown();
      const claims = decodeJwt(tokens.access_token!);
      expect(claims.sub).toBe(demo().user.id);
      expect(claims.organisations).toEqual(expect.arrayContaining([acme.id, globex.id]));
      expect((claims.organisations as string[]).length).toBe(2);
      // a refresh, from the page's button
      await page.getByRole('button', { name: 'Refresh the tokens' }).click();
      await page.getByRole('heading', { name: 'Token response' }).waitFor();
      const refreshed = await shown();
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
      expect(refreshed.access_token).not.toBe(tokens.access_token);
      await page.close();
      accessToken = refreshed.access_token!;
      refreshToken = refreshed.refresh_token!;
      grantId = String(claims.grant_id);
    } catch (error) {
      await stop(first);
      throw error;
    }
    expect(await stop(first)).toBe(true);
    expect(await portOpen(port)).toBe(false);

    // the same data directory, a new process: client, grant and signing key are still there
    const second = pnpmStart(machine.node, env);
    try {
      await running(second);
      const as = await discover();
      const jwks = createRemoteJWKSet(new URL(as.jwks_uri!));
      const { payload } = await jwtVerify(accessToken, jwks, { issuer });
      expect(payload.grant_id).toBe(grantId);
      const cc = await oauth.clientCredentialsGrantRequest(
        as,
        { client_id: registered.client_id },
        oauth.ClientSecretBasic(registered.client_secret),
        new URLSearchParams({ scope: 'invoices.read' }),
        insecure,
      );
      expect(cc.status).toBe(200);
      const web = demo().webClient;
      const again = await oauth.processRefreshTokenResponse(
        as,
        { client_id: web.client_id },
        await oauth.refreshTokenGrantRequest(
          as,
          { client_id: web.client_id },
          oauth.ClientSecretBasic(web.client_secret),
          refreshToken,
          insecure,
        ),
      );
      expect(decodeJwt(again.access_token).grant_id).toBe(grantId);
      // the grant, through the Grant Management API
      const grant = await fetch(`${issuer}/oauth2/grants/${grantId}`, {
        headers: {
          authorization: `Basic ${Buffer.from(`${web.client_id}:${web.client_secret}`).toString('base64')}`,
        },
      });
      expect(grant.status).toBe(200);
      expect(await grant.json()).toMatchObject({ scopes: expect.any(Array) });
    } catch (error) {
      await stop(second);
      throw error;
    }
    expect(await stop(second)).toBe(true);
    expect(dirname(dataDir)).toBe(root);
  }, 300_000);
});
