import { type FormEndpoint, InvalidGrant, oauthErrorBoundary } from '@grantline/oauth';
import { createLogger, startTelemetry } from '@grantline/telemetry';
import { createTestDatabase } from '@grantline/testing';
import { metrics, trace } from '@opentelemetry/api';
import express from 'express';
import { pino } from 'pino';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { StartupError } from '../src/config.ts';
import { describeStartupFailure } from '../src/main.ts';
import { distributedRuntime } from '../src/runtime.ts';
import { startService } from '../src/service.ts';

const telemetry = startTelemetry({ serviceName: 'test' });
afterAll(() => telemetry.shutdown());

const start = (
  readiness: Record<string, () => Promise<unknown>>,
  onShutdown: (() => Promise<unknown>)[] = [],
) =>
  startService({
    name: 'svc',
    port: 0,
    logger: pino({ level: 'silent' }),
    telemetry,
    readiness,
    onShutdown,
    routes: (app) => {
      app.post('/echo', express.json({ limit: '1kb' }), (req, res) => {
        res.json(req.body);
      });

      app.get('/slow', async (_req, res) => {
        await new Promise((r) => setTimeout(r, 300));
        res.json({ done: true });
      });
      app.get('/boom', () => {
        throw new Error('secret internals');
      });
    },
  });

describe('service bootstrap', () => {
  it('reports liveness, and readiness per dependency only on the management port', async () => {
    let redisUp = false;
    const svc = await start({
      postgres: async () => {},
      redis: async () => (redisUp ? 'PONG' : Promise.reject(new Error('ECONNREFUSED 10.0.0.7:6379'))),
    });
    try {
      expect(await (await fetch(`${svc.url}/healthz`)).json()).toEqual({ status: 'ok' });
      const notReady = await fetch(`${svc.managementUrl}/readyz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toEqual({
        status: 'not ready',
        checks: { postgres: 'ok', redis: 'unavailable: ECONNREFUSED 10.0.0.7:6379' },
      });
      const publicNotReady = await fetch(`${svc.url}/readyz`);
      expect(publicNotReady.status).toBe(503);
      expect(await publicNotReady.json()).toEqual({ status: 'not ready' });
      redisUp = true;
      expect((await fetch(`${svc.managementUrl}/readyz`)).status).toBe(200);
      expect(await (await fetch(`${svc.url}/readyz`)).json()).toEqual({ status: 'ready' });
    } finally {
      await svc.stop();
    }
  });

  it('fails to start, rather than hang, when its port is taken, and says so in one line', async () => {
    const svc = await start({});
    try {
      const port = Number(new URL(svc.url).port);
      await expect(
        startService({
          name: 'dup',
          port,
          logger: pino({ level: 'silent' }),
          telemetry,
          readiness: {},
          onShutdown: [],
          routes: () => {},
        }),
      ).rejects.toMatchObject({ startup: true, message: expect.stringMatching(/already in use.*PORT/) });
    } finally {
      await svc.stop();
    }
  });

  it('answers a hanging dependency check within bounded time', async () => {
    const svc = await start({ kafka: () => new Promise(() => {}) });
    try {
      const started = Date.now();
      const res = await fetch(`${svc.url}/readyz`);
      expect(res.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await svc.stop();
    }
  });

  it("runs a request in its trace after body parsing, and logs its line with the trace's ids", async () => {
    const lines: { trace_id?: string; req?: { path?: string } }[] = [];
    const svc = await startService({
      name: 'svc',
      port: 0,
      logger: createLogger({
        name: 'svc',
        level: 'info',
        destination: { write: (line: string) => lines.push(JSON.parse(line)) },
      }),
      telemetry,
      readiness: {},
      onShutdown: [],
      routes: (app) =>
        app.post('/trace', express.json({ limit: '2mb' }), (_req, res) => {
          res.json({ traceId: trace.getActiveSpan()?.spanContext().traceId ?? null });
        }),
    });
    try {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      // a body of many chunks: the parser's callbacks come from the socket's reads
      const res = await fetch(`${svc.url}/trace`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
        body: JSON.stringify({ padding: 'x'.repeat(1_000_000) }),
      });
      expect(await res.json()).toEqual({ traceId });
      await new Promise((r) => setTimeout(r, 50));
      expect(lines.find((l) => l.req?.path === '/trace')?.trace_id).toBe(traceId);
    } finally {
      await svc.stop();
    }
  });

  it('serves Prometheus metrics on the management port only', async () => {
    metrics.getMeter('t').createCounter('grantline.test.counter').add(3);
    const svc = await start({});
    try {
      const text = await (await fetch(`${svc.managementUrl}/metrics`)).text();
      expect(text).toMatch(/grantline_test_counter(_total)?(\{[^}]*\})? 3/);
      expect((await fetch(`${svc.url}/metrics`)).status).toBe(404);
    } finally {
      await svc.stop();
    }
  });

  it('answers errors as RFC 7807 problems without internals: 404, 413, malformed JSON, 500', async () => {
    const svc = await start({});
    try {
      const notFound = await fetch(`${svc.url}/nope`);
      expect(notFound.status).toBe(404);
      expect(notFound.headers.get('content-type')).toContain('application/problem+json');
      const big = await fetch(`${svc.url}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ x: 'y'.repeat(5_000) }),
      });
      expect(big.status).toBe(413);
      const bad = await fetch(`${svc.url}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{',
      });
      expect(bad.status).toBe(400);
      const boom = await fetch(`${svc.url}/boom`);
      expect(boom.status).toBe(500);
      const body = await boom.text();
      expect(JSON.parse(body)).toEqual({ type: 'about:blank', title: 'Internal Server Error', status: 500 });
      expect(body).not.toContain('secret internals');
    } finally {
      await svc.stop();
    }
  });

  it('shuts down gracefully: finishes in-flight requests, then runs the hooks in order', async () => {
    const order: string[] = [];
    const svc = await start({}, [
      async () => order.push('flush relay'),
      async () => order.push('disconnect'),
    ]);
    const inFlight = fetch(`${svc.url}/slow`).then((r) => r.json());
    await new Promise((r) => setTimeout(r, 50));
    await svc.stop();
    expect(await inFlight).toEqual({ done: true });
    expect(order).toEqual(['flush relay', 'disconnect']);
    await expect(fetch(`${svc.url}/healthz`)).rejects.toThrow();
    await expect(fetch(`${svc.managementUrl}/healthz`)).rejects.toThrow();
  });
});

describe('start-up failures', () => {
  it('are one line naming the cause, never a stack trace', () => {
    const unknown = describeStartupFailure('token', Object.assign(new Error('boom'), { code: 'EBOOM' }));
    expect(unknown).toBe('token: could not start: boom (EBOOM)');
    expect(describeStartupFailure('token', new StartupError('port taken; choose another'))).toBe(
      'token: port taken; choose another',
    );
  });

  it('name an unreachable Postgres and the variable that points at it', async () => {
    const error = await distributedRuntime({
      databaseUrl: 'postgres://nobody:secret@127.0.0.1:1/none',
      kafkaBrokers: ['127.0.0.1:1'],
    })({ service: 'registry', logger: pino({ level: 'silent' }) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StartupError);
    expect((error as Error).message).toMatch(/cannot reach Postgres at 127\.0\.0\.1:1 \(DATABASE_URL\)/);
    expect((error as Error).message).not.toContain('secret');
  });

  it('name an unreachable Kafka and the variable that points at it, within seconds', async () => {
    const db = await createTestDatabase(inject('infra'), 3);
    try {
      const started = Date.now();
      const error = await distributedRuntime({ databaseUrl: db.url, kafkaBrokers: ['127.0.0.1:1'] })({
        service: 'registry',
        logger: pino({ level: 'silent' }),
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StartupError);
      expect((error as Error).message).toMatch(/cannot reach Kafka at 127\.0\.0\.1:1 \(KAFKA_BROKERS\)/);
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      await db.drop();
    }
  });
});

describe('protocol routes on bare node:http (ADR 5)', () => {
  const endpoint: FormEndpoint = {
    repeatable: ['resource'],
    async handle(req) {
      if (req.form.fail === 'oauth') throw new InvalidGrant('no such grant');
      if (req.form.fail === 'crash') throw new Error('secret internals');
      return {
        body: { form: req.form, resources: req.lists.resource ?? [], auth: req.get('Authorization') ?? null },
      };
    },
  };
  const module = {
    name: 'svc',
    logger: pino({ level: 'silent' }),
    readiness: {},
    onShutdown: [],
    formEndpoints: { '/form': endpoint },
    routes: (app: express.Express, log: Parameters<typeof oauthErrorBoundary>[0]) => {
      app.use('/form', oauthErrorBoundary(log));
    },
  };
  const post = (url: string, body: string, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body,
    });
  /** status, the headers a client sees (date aside) and the body */
  const seen = async (res: Response) => ({
    status: res.status,
    headers: Object.fromEntries(
      [...res.headers].filter(([name]) => !['date', 'keep-alive', 'connection'].includes(name)),
    ),
    body: await res.text(),
  });

  it('answers exactly as the same endpoint behind express, without passing through express', async () => {
    const svc = await startService({ ...module, port: 0, telemetry });
    // the same module's express app, as the embedded mode mounts it
    const viaExpress = await new Promise<import('node:http').Server>((ok) => {
      const s = svc.app.listen(0, '127.0.0.1', () => ok(s));
    });
    const expressUrl = `http://127.0.0.1:${(viaExpress.address() as import('node:net').AddressInfo).port}`;
    // every request express handles goes through `app.handle`: the node:http path must never reach it
    let handledByExpress = 0;
    const app = svc.app as unknown as { handle: (...args: unknown[]) => unknown };
    const handle = app.handle;
    app.handle = function (this: unknown, ...args: unknown[]) {
      handledByExpress++;
      return handle.apply(this, args);
    };
    try {
      const cases: [string, Record<string, string>?][] = [
        ['grant_type=x&resource=a&resource=b', { authorization: 'Basic abc' }],
        ['grant_type=x&grant_type=y'],
        ['fail=oauth'],
        ['fail=crash'],
        [`big=${'a'.repeat(20_000)}`],
      ];
      for (const [body, headers] of cases) {
        const before = handledByExpress;
        const fast = await seen(await post(`${svc.url}/form`, body, headers));
        expect(handledByExpress).toBe(before);
        const slow = await seen(await post(`${expressUrl}/form`, body, headers));
        expect(handledByExpress).toBe(before + 1);
        expect(fast).toEqual(slow);
        expect(fast.headers['cache-control']).toBe('no-store');
      }
      const wrongType = await fetch(`${svc.url}/form`, {
        method: 'POST',
        body: '{}',
        headers: { 'content-type': 'application/json' },
      });
      expect(await seen(wrongType)).toEqual(
        await seen(
          await fetch(`${expressUrl}/form`, {
            method: 'POST',
            body: '{}',
            headers: { 'content-type': 'application/json' },
          }),
        ),
      );
      expect(wrongType.status).toBe(400);
      // the crash is a generic server_error, its message never shown
      const crash = await post(`${svc.url}/form`, 'fail=crash');
      expect(crash.status).toBe(500);
      expect(await crash.text()).not.toContain('secret internals');
      // other methods and paths still go to express (here: its 404 problem)
      const before = handledByExpress;
      const get = await fetch(`${svc.url}/form?x=1`);
      expect(get.status).toBe(404);
      expect(handledByExpress).toBe(before + 1);
    } finally {
      viaExpress.close();
      await svc.stop();
    }
  });
});
