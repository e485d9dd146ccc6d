import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type MiddlewareOptions,
  type RevocationSubscriber,
  requireAccessToken,
  SubscriptionRefused,
  subscribeToRevocationStream,
} from '../src/index.ts';

const ISSUER = 'https://as.example';
const AUDIENCE = 'https://invoices.example';
const RS = { id: 'rs-client', secret: 'rs-secret' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stand-in for the introspection service: JWKS, the revocation stream and introspection, all test-driven. */
class FakeAuthorizationServer {
  server!: Server;
  url = '';
  keys!: { privateKey: CryptoKey; publicKey: CryptoKey };
  jwks: JWK[] = [];
  facts: Record<string, unknown>[] = [];
  clients = new Set<ServerResponse>();
  lastEventIds: (string | undefined)[] = [];
  heartbeats = true;
  introspections = 0;
  introspect: (token: string) => { status: number; body?: unknown } = () => ({
    status: 200,
    body: { active: true },
  });
  private sequence = 0;
  private timer?: NodeJS.Timeout;

  async start() {
    this.keys = await generateKeyPair('ES256', { extractable: true });
    this.jwks = [{ ...(await exportJWK(this.keys.publicKey)), kid: 'k1', alg: 'ES256' }];
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', () => ok()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    this.timer = setInterval(() => this.heartbeats && this.broadcast(this.heartbeat()), 100);
  }

  stop() {
    clearInterval(this.timer);
    for (const c of this.clients) c.destroy();
    this.server.close();
  }

  /** a fact as the projector publishes it, sent to every open stream */
  revoke(key: string, ttlMs = 600_000) {
    const fact = {
      key,
      kind: 'token',
      revokedAt: new Date().toISOString(),
      expiresAt: new Date(Date.now() + ttlMs).toISOString(),
      sequence: ++this.sequence,
    };
    this.facts.push(fact);
    this.broadcast(`id: ${fact.sequence}\nevent: revocation\ndata: ${JSON.stringify(fact)}\n\n`);
  }

  /** ends every open stream (the subscriber must reconnect) */
  drop() {
    for (const c of this.clients) c.destroy();
    this.clients.clear();
  }

  private heartbeat() {
    return `event: heartbeat\ndata: ${JSON.stringify({ time: new Date().toISOString(), lastSequence: this.sequence })}\n\n`;
  }

  private broadcast(text: string) {
    for (const c of this.clients) c.write(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const authorised =
      req.headers.authorization === `Basic ${Buffer.from(`${RS.id}:${RS.secret}`).toString('base64')}`;
    if (req.url === '/jwks') return void res.end(JSON.stringify({ keys: this.jwks }));
    if (req.url === '/oauth2/revocations/stream') {
      if (!authorised) return void res.writeHead(401).end();
      const after = Number(req.headers['last-event-id'] ?? 0);
      this.lastEventIds.push(req.headers['last-event-id'] as string | undefined);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('retry: 1000\n\n');
      for (const f of this.facts.filter((f) => (f.sequence as number) > after))
        res.write(`id: ${f.sequence}\nevent: revocation\ndata: ${JSON.stringify(f)}\n\n`);
      this.clients.add(res);
      req.on('close', () => this.clients.delete(res));
      return;
    }
    if (req.url === '/oauth2/introspect') {
      this.introspections++;
      let body = '';
      for await (const chunk of req) body += chunk;
      if (!authorised) return void res.writeHead(401).end();
      const answer = this.introspect(new URLSearchParams(body).get('token') ?? '');
      return void res
        .writeHead(answer.status, { 'content-type': 'application/json' })
        .end(JSON.stringify(answer.body));
    }
    res.writeHead(404).end();
  }
}

describe('resource server SDK: the deny-list kept warm by the revocation stream', () => {
  const as = new FakeAuthorizationServer();
  const servers: Server[] = [];
  const subscribers: RevocationSubscriber[] = [];

  const subscribe = () => {
    const s = subscribeToRevocationStream({
      url: `${as.url}/oauth2/revocations/stream`,
      clientId: RS.id,
      clientSecret: RS.secret,
      backoffMs: 20,
      maxBackoffMs: 100,
    });
    subscribers.push(s);
    return s;
  };

  /** the invoices API on the SDK: per-organisation route, and a route taking the organisation header */
  const invoicesApi = async (options: Partial<MiddlewareOptions>) => {
    const app = express();
    const guard = requireAccessToken({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: `${as.url}/jwks`,
      scopes: ['invoices.read'],
      ...options,
    });
    app.get('/organisations/:organisationId/invoices', guard, (_req, res) => void res.json({ ok: true }));
    app.get('/invoices', guard, (_req, res) => void res.json({ ok: true }));
    const server = await new Promise<Server>((ok) => {
      const s = app.listen(0, '127.0.0.1', () => ok(s));
    });
    servers.push(server);
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return (token: string, organisation: string, via: 'route' | 'header' = 'route') =>
      fetch(via === 'route' ? `${base}/organisations/${organisation}/invoices` : `${base}/invoices`, {
        headers: {
          authorization: `Bearer ${token}`,
          ...(via === 'header' && { 'grantline-organisation': organisation }),
        },
        signal: AbortSignal.timeout(5_000),
      });
  };

  const token = (claims: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: 'user-1',
      client_id: 'app-1',
      scope: 'invoices.read',
      jti: randomUUID(),
      grant_id: 'grant-1',
      organisations: ['org-1', 'org-2'],
      iat: now,
      exp: now + 300,
      ...claims,
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k1' })
      .sign(as.keys.privateKey);
  };

  const expectRevoked = async (res: Response) => {
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    expect(await res.json()).toEqual({
      error: 'invalid_token',
      error_description: 'the access token has been revoked',
    });
  };
  const expectUnavailable = async (res: Response) => {
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
  };
  const eventually = async (check: () => Promise<boolean>, ms = 1_000) => {
    const until = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > until) throw new Error('not within the time allowed');
      await sleep(10);
    }
  };

  beforeAll(() => as.start());
  afterEach(async () => {
    for (const s of subscribers.splice(0)) await s.close();
    as.heartbeats = true;
  });
  afterAll(() => {
    for (const s of servers) s.close();
    as.stop();
  });

  it('bootstrap: ready only after the stream replayed the live facts; a replayed fact denies its token', async () => {
    const revoked = await token();
    const live = await token();
    as.revoke(
      `jti:${(JSON.parse(Buffer.from(revoked.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti}`,
    );
    as.heartbeats = false;
    const subscriber = subscribe();
    const call = await invoicesApi({ revocations: subscriber });
    // connected and replayed, but before the first heartbeat the deny-list cannot vouch for anything
    await eventually(async () => subscriber.denyList.lastSequence === as.facts.length);
    expect(subscriber.denyList.ready).toBe(false);
    await expectUnavailable(await call(live, 'org-1'));
    as.heartbeats = true;
    await subscriber.ready();
    expect(subscriber.denyList.ready).toBe(true);
    await expectRevoked(await call(revoked, 'org-1'));
    expect((await call(live, 'org-1')).status).toBe(200);
  });

  it('item 35: a live fact is applied within a second: grant x organisation denies one organisation, the other keeps working (route and header)', async () => {
    const subscriber = subscribe();
    await subscriber.ready();
    const call = await invoicesApi({ revocations: subscriber });
    const t = await token({ grant_id: `grant-${randomUUID()}` });
    expect((await call(t, 'org-1')).status).toBe(200);
    expect((await call(t, 'org-2', 'header')).status).toBe(200);
    const grant = (JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { grant_id: string })
      .grant_id;
    as.revoke(`grant-org:${grant}:org-2`);
    await eventually(async () => (await call(t, 'org-2')).status === 401);
    await expectRevoked(await call(t, 'org-2', 'header'));
    expect((await call(t, 'org-1')).status).toBe(200);
    expect((await call(t, 'org-1', 'header')).status).toBe(200);
    // and the whole grant, the subject and the client each deny every organisation
    for (const [key, claims] of [
      ['grant:g-whole', { grant_id: 'g-whole' }],
      ['sub:user-gone', { sub: 'user-gone' }],
      ['client:app-bad', { client_id: 'app-bad' }],
    ] as const) {
      const victim = await token(claims);
      expect((await call(victim, 'org-1')).status).toBe(200);
      as.revoke(key);
      await eventually(async () => (await call(victim, 'org-1')).status === 401);
    }
    // an admin's subject or client revocation covers the tokens issued up to it, not those after it
    const later = Math.floor(Date.now() / 1000) + 2;
    expect((await call(await token({ sub: 'user-gone', iat: later }), 'org-1')).status).toBe(200);
    expect((await call(await token({ client_id: 'app-bad', iat: later }), 'org-1')).status).toBe(200);
    await expectRevoked(await call(await token({ grant_id: 'g-whole', iat: later }), 'org-1'));
  });

  it('reconnects with Last-Event-ID after the stream drops, and gets the facts it missed', async () => {
    const subscriber = subscribe();
    await subscriber.ready();
    const call = await invoicesApi({ revocations: subscriber });
    as.revoke('jti:before-the-drop');
    await eventually(async () => subscriber.denyList.lastSequence === as.facts.length);
    const seen = as.lastEventIds.length;
    as.drop();
    const missed = await token();
    as.revoke(
      `jti:${(JSON.parse(Buffer.from(missed.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti}`,
    );
    await eventually(async () => (await call(missed, 'org-1')).status === 401, 2_000);
    expect(as.lastEventIds.slice(seen)[0]).toBe(String(as.facts.length - 1));
  });

  it('item 37: a fact is forgotten at its expiresAt, when every token it denies has expired', async () => {
    const subscriber = subscribe();
    await subscriber.ready();
    const call = await invoicesApi({ revocations: subscriber });
    const t = await token();
    const { jti } = JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as { jti: string };
    as.revoke(`jti:${jti}`, 300);
    await eventually(async () => (await call(t, 'org-1')).status === 401);
    await sleep(350);
    expect(subscriber.denyList.revoked([`jti:${jti}`])).toBeUndefined();
  });

  it('fail-closed: heartbeats stop, the watermark ages past the budget, and requests get 503 with Retry-After, not a hang', async () => {
    const subscriber = subscribe();
    await subscriber.ready();
    const call = await invoicesApi({ revocations: subscriber, freshnessBudgetSeconds: 0.3 });
    const t = await token();
    expect((await call(t, 'org-1')).status).toBe(200);
    as.heartbeats = false;
    await sleep(400);
    const started = Date.now();
    await expectUnavailable(await call(t, 'org-1'));
    expect(Date.now() - started).toBeLessThan(500);
    as.heartbeats = true;
    await eventually(async () => (await call(t, 'org-1')).status === 200);
  });

  it('introspect: a stale deny-list falls back to RFC 7662 introspection with the resource server credentials; its failure is 503', async () => {
    const subscriber = subscribe();
    await subscriber.ready();
    const call = await invoicesApi({
      revocations: subscriber,
      freshnessBudgetSeconds: 0.3,
      policy: 'introspect',
      introspection: { endpoint: `${as.url}/oauth2/introspect`, clientId: RS.id, clientSecret: RS.secret },
    });
    const active = await token();
    const inactive = await token();
    as.introspect = (t) =>
      t === active
        ? { status: 200, body: { active: true, organisations: ['org-1'] } }
        : { status: 200, body: { active: false } };
    as.heartbeats = false;
    await sleep(400);
    const before = as.introspections;
    expect((await call(active, 'org-1')).status).toBe(200);
    // introspection lists only the organisations still connected
    expect((await call(active, 'org-2')).status).toBe(401);
    expect((await call(inactive, 'org-1')).status).toBe(401);
    expect(as.introspections - before).toBe(3);
    as.introspect = () => ({ status: 500 });
    await expectUnavailable(await call(active, 'org-1'));
  });

  it('refused credentials reject ready() instead of retrying for ever', async () => {
    const s = subscribeToRevocationStream({
      url: `${as.url}/oauth2/revocations/stream`,
      clientId: RS.id,
      clientSecret: 'wrong',
    });
    subscribers.push(s);
    await expect(s.ready()).rejects.toBeInstanceOf(SubscriptionRefused);
  });

  it('the introspect policy without introspection options fails at construction', () => {
    expect(() =>
      requireAccessToken({
        issuer: ISSUER,
        audience: AUDIENCE,
        jwksUri: `${as.url}/jwks`,
        policy: 'introspect',
      }),
    ).toThrow(/introspection options/);
  });
});
