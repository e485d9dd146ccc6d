import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServiceName } from '@grantline/keys';
import { freePort, portOpen } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Gateway, GatewayConfigError, startGateway } from '../src/gateway.ts';

const SERVICE_NAMES: readonly ServiceName[] = [
  'authorization',
  'registry',
  'token',
  'consent',
  'introspection',
];

/** What a stand-in service saw of a request. */
interface Seen {
  service: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  length: number;
  sha256: string;
}

/** A stand-in service: echoes what it saw, or answers the few special paths the tests need. */
const standIn = async (service: string): Promise<{ server: Server; origin: string }> => {
  const server = createServer((req, res) => {
    if (req.url === '/hang') return; // never answers
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/signed-in') {
        res.writeHead(303, {
          location: 'http://elsewhere.test/consent?consent_challenge=abc',
          'set-cookie': ['grantline_session=s1; Path=/; HttpOnly; SameSite=Lax', 'other=2; Path=/x'],
        });
        return res.end();
      }
      if (req.url === '/slow') return setTimeout(() => res.end('slow'), 300);
      const seen: Seen = {
        service,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        length: body.length,
        sha256: createHash('sha256').update(body).digest('hex'),
      };
      res.setHeader('content-type', 'application/json').end(JSON.stringify(seen));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
};

/** A request with headers fetch may not set (Host, Forwarded). */
const raw = (url: string, headers: Record<string, string>) =>
  new Promise<Seen>((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let text = '';
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end();
  });

describe('the development gateway', () => {
  const stopped: { server: Server }[] = [];
  let services: Record<ServiceName, string>;
  let management: { token: string; registry: string; consent: string };
  let gateway: Gateway;

  beforeAll(async () => {
    const started = await Promise.all(SERVICE_NAMES.map((name) => standIn(name)));
    const [tokenManagement, registryManagement, consentManagement] = await Promise.all([
      standIn('token-management'),
      standIn('registry-management'),
      standIn('consent-management'),
    ]);
    stopped.push(...started, tokenManagement, registryManagement, consentManagement);
    services = Object.fromEntries(SERVICE_NAMES.map((name, i) => [name, started[i]?.origin])) as Record<
      ServiceName,
      string
    >;
    management = {
      token: tokenManagement.origin,
      registry: registryManagement.origin,
      consent: consentManagement.origin,
    };
    gateway = await startGateway({
      port: 0,
      host: '127.0.0.1',
      targets: services,
      managementPort: 0,
      managementTargets: management,
      upstreamTimeoutMs: 500,
    });
  });
  afterAll(async () => {
    await gateway?.stop();
    for (const { server } of stopped) {
      server.closeAllConnections();
      server.close();
    }
  });

  const seen = async (url: string, init?: RequestInit) => (await (await fetch(url, init)).json()) as Seen;

  it('routes public paths by prefix, on whole segments, the rest to the authorization service', async () => {
    const expected: [string, string][] = [
      ['/oauth2/token', 'token'],
      ['/oauth2/token?grant_type=x', 'token'],
      ['/oauth2/jwks', 'token'],
      ['/oauth2/revoke', 'token'],
      ['/oauth2/register', 'registry'],
      ['/oauth2/register/client-1', 'registry'],
      ['/oauth2/grants/g-1', 'consent'],
      ['/consent', 'consent'],
      ['/consent?consent_challenge=c', 'consent'],
      ['/oauth2/introspect', 'introspection'],
      ['/oauth2/introspection/jwks', 'introspection'],
      ['/oauth2/revocations/stream', 'introspection'],
      ['/oauth2/introspector', 'authorization'],
      ['/consents', 'authorization'],
      ['/account/connections', 'consent'],
      ['/account/api/connections/c-1', 'consent'],
      ['/accounts', 'authorization'],
      ['/oauth2/tokens', 'authorization'],
      ['/oauth2/registered', 'authorization'],
      ['/.well-known/oauth-authorization-server', 'authorization'],
      ['/oauth2/authorize?client_id=c', 'authorization'],
      ['/login', 'authorization'],
      ['/admin/scopes', 'authorization'],
    ];
    for (const [path, service] of expected) {
      const echo = await seen(`${gateway.url}${path}`);
      expect([path, echo.service, echo.url]).toEqual([path, service, path]);
    }
  });

  it('routes /admin/keys to the token service, /admin/revocations to consent and the rest of /admin to the registry, and nothing else', async () => {
    expect(gateway.managementUrl).toBeDefined();
    const at = (path: string) => seen(`${gateway.managementUrl}${path}`).then((echo) => echo.service);
    expect(await at('/admin/keys/rotate')).toBe('token-management');
    expect(await at('/admin/keys')).toBe('token-management');
    expect(await at('/admin/keysets')).toBe('registry-management');
    expect(await at('/admin/revocations/subjects/usr_1')).toBe('consent-management');
    expect(await at('/admin/revocations/clients/c-1')).toBe('consent-management');
    expect(await at('/admin/revocationsx')).toBe('registry-management');
    expect(await at('/admin/initial-access-tokens')).toBe('registry-management');
    const metrics = await fetch(`${gateway.managementUrl}/metrics`);
    expect(metrics.status).toBe(404);
    expect(metrics.headers.get('content-type')).toBe('application/problem+json');
    expect(await metrics.json()).toEqual({
      type: 'about:blank',
      title: 'Not Found',
      status: 404,
      detail: 'no route for GET /metrics',
    });
  });

  it('streams form and JSON bodies through unchanged, with their headers', async () => {
    const form = new URLSearchParams({ grant_type: 'client_credentials', scope: 'a b', x: 'é&=' }).toString();
    const echo = await seen(`${gateway.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic YTpi' },
      body: form,
    });
    expect(echo).toMatchObject({ service: 'token', method: 'POST', length: Buffer.byteLength(form) });
    expect(echo.sha256).toBe(createHash('sha256').update(form).digest('hex'));
    expect(echo.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(echo.headers.authorization).toBe('Basic YTpi');

    const large = randomBytes(1_000_000);
    const json = await seen(`${gateway.url}/oauth2/register`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: large,
    });
    expect(json).toMatchObject({ service: 'registry', method: 'PUT', length: large.length });
    expect(json.sha256).toBe(createHash('sha256').update(large).digest('hex'));
  });

  it('passes Set-Cookie and Location through unchanged', async () => {
    const res = await fetch(`${gateway.url}/signed-in`, { method: 'POST', body: 'x=1', redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('http://elsewhere.test/consent?consent_challenge=abc');
    expect(res.headers.getSetCookie()).toEqual([
      'grantline_session=s1; Path=/; HttpOnly; SameSite=Lax',
      'other=2; Path=/x',
    ]);
  });

  it('keeps the Host header and replaces any forwarded headers the client sent with what it saw', async () => {
    const echo = await raw(`${gateway.url}/oauth2/token`, {
      host: 'grantline.test:8443',
      'x-forwarded-for': '203.0.113.7',
      'x-forwarded-host': 'evil.test',
      'x-forwarded-proto': 'https',
      'x-forwarded-port': '1',
      forwarded: 'for=203.0.113.7',
    });
    expect(echo.service).toBe('token');
    expect(echo.headers.host).toBe('grantline.test:8443');
    expect(echo.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(echo.headers['x-forwarded-host']).toBe('grantline.test:8443');
    expect(echo.headers['x-forwarded-proto']).toBe('http');
    expect(echo.headers['x-forwarded-port']).toBeUndefined();
    expect(echo.headers.forwarded).toBeUndefined();
  });

  it('answers 502 with a problem document, no stack, when a service is down', async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const partial = await startGateway({ port: 0, host: '127.0.0.1', targets: { ...services, token: down } });
    try {
      const res = await fetch(`${partial.url}/oauth2/token`, { method: 'POST', body: 'grant_type=x' });
      expect(res.status).toBe(502);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json()).toEqual({
        type: 'about:blank',
        title: 'Bad Gateway',
        status: 502,
        detail: 'the token service is unavailable',
      });
      // the others still answer
      expect((await seen(`${partial.url}/consent`)).service).toBe('consent');
    } finally {
      await partial.stop();
    }
  });

  it('answers 504 with a problem document when a service does not answer in time', async () => {
    const started = Date.now();
    const res = await fetch(`${gateway.url}/hang`);
    expect(res.status).toBe(504);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await res.json()).toEqual({
      type: 'about:blank',
      title: 'Gateway Timeout',
      status: 504,
      detail: 'the authorization service did not answer in time',
    });
  });

  it('drops an idle connection to a service before the service would (no reset on reuse)', async () => {
    // a service that keeps idle connections 2 s (its Keep-Alive hint says so): the gateway lets go first
    const closedAfter: number[] = [];
    let answered = 0;
    const short = createServer((_req, res) => {
      answered = Date.now();
      res.end('ok');
    });
    short.keepAliveTimeout = 2_000;
    short.on('connection', (socket) => socket.on('close', () => closedAfter.push(Date.now() - answered)));
    await new Promise<void>((r) => short.listen(0, '127.0.0.1', () => r()));
    const target = `http://127.0.0.1:${(short.address() as AddressInfo).port}`;
    const another = await startGateway({
      port: 0,
      host: '127.0.0.1',
      targets: { ...services, consent: target },
    });
    try {
      expect(await (await fetch(`${another.url}/consent`)).text()).toBe('ok');
      await new Promise((r) => setTimeout(r, 2_500));
      // closed by the gateway about a second before the service's 2 s (the hint less a second)
      expect(closedAfter).toHaveLength(1);
      expect(closedAfter[0]).toBeLessThan(1_700);
      expect(await (await fetch(`${another.url}/consent`)).text()).toBe('ok');
    } finally {
      await another.stop();
      short.closeAllConnections();
      short.close();
    }
  });

  it('stops cleanly: a request in flight finishes, then the port is closed', async () => {
    const port = await freePort();
    const another = await startGateway({ port, host: '127.0.0.1', targets: services });
    const inFlight = fetch(`${another.url}/slow`).then((r) => r.text());
    await new Promise((r) => setTimeout(r, 50));
    await another.stop();
    expect(await inFlight).toBe('slow');
    expect(await portOpen(port)).toBe(false);
  });

  it('refuses an invalid configuration before listening', async () => {
    await expect(
      startGateway({ port: 0, host: '127.0.0.1', targets: { ...services, consent: 'not a url' } }),
    ).rejects.toThrow(GatewayConfigError);
    await expect(
      startGateway({ port: 0, host: '127.0.0.1', targets: services, managementPort: 0 }),
    ).rejects.toThrow('managementPort and managementTargets go together');
    await expect(
      startGateway({
        port: 0,
        host: '127.0.0.1',
        targets: services,
        managementPort: 0,
        managementTargets: { registry: management.registry },
      }),
    ).rejects.toThrow('no target for token');
  });
});
