import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TOPICS } from '@grantline/events';
import { requireAccessToken } from '@grantline/resource-server';
import { SPANS, startTelemetry } from '@grantline/telemetry';
import { eventually } from '@grantline/testing';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import express from 'express';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Agent, authorizeUrl, createTenant, hidden, pkce, redeem, type Tenant } from './flow.ts';
import { type Stack, startStack } from './stack.ts';

/**
 * One trace from the authorization request to the resource server (issue 11, docs/adr/0003). Every
 * service runs in this process, so one in-memory exporter sees every span. The relying party starts
 * the trace: its authorization request carries a `traceparent`; the browser steps after it (sign-in,
 * consent, the return to /oauth2/authorize/complete) and the code redemption carry none, and the
 * services continue the flow's trace from what its signed statements and the sealed code recorded;
 * the resource-server call carries the relying party's trace again. Within it: Postgres queries,
 * Redis commands and the SDK's outgoing HTTP request are client spans, and the request carries the
 * trace to the service that answers it.
 */
describe('telemetry: one trace from /oauth2/authorize to the resource server', () => {
  const exporter = new InMemorySpanExporter();
  const telemetry = startTelemetry({
    serviceName: 'grantline-e2e',
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  let stack: Stack;
  let tenant: Tenant;
  let server: Server;
  let apiUrl: string;

  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    tenant = await createTenant(stack);
    const app = express();
    app.get(
      '/invoices',
      requireAccessToken({
        issuer: stack.issuer,
        audience: stack.issuer,
        jwksUri: `${stack.tokenUrl}/oauth2/jwks`,
      }),
      (_req, res) => void res.json({ ok: true }),
    );
    server = await new Promise<Server>((ok) => {
      const s = app.listen(0, '127.0.0.1', () => ok(s));
    });
    apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/invoices`;
  }, 120_000);
  afterAll(async () => {
    server?.close();
    await stack?.stop();
    await telemetry.shutdown();
  });

  const spans = () => exporter.getFinishedSpans();
  const inTrace = (traceId: string) => spans().filter((s) => s.spanContext().traceId === traceId);
  const named = (list: ReadableSpan[], name: string) => list.filter((s) => s.name === name);

  it('covers authorize, consent, the code redemption, the events on Kafka and the resource-server check', async () => {
    const traceId = randomBytes(16).toString('hex');
    const traceparent = `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
    const agent = new Agent();
    const { verifier, challenge } = pkce();

    // the relying party's authorization request, in its trace
    let step = await agent.request(
      authorizeUrl(stack, {
        response_type: 'code',
        client_id: tenant.client.client_id,
        redirect_uri: tenant.client.redirect_uri,
        scope: tenant.scopes.join(' '),
        state: 'trace',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }),
      { headers: { traceparent } },
    );
    // the browser: no trace context from here on
    for (let hops = 0; hops < 10; hops++) {
      if (step.text.includes('name="login_challenge"')) {
        step = await agent.request(`${stack.issuer}/login`, {
          form: {
            login_challenge: hidden(step.text, 'login_challenge'),
            csrf_token: hidden(step.text, 'csrf_token'),
            username: tenant.user.username,
            password: tenant.user.password,
          },
        });
      } else if (step.text.includes('name="consent_challenge"')) {
        step = await agent.request(`${stack.consentUrl}/consent`, {
          form: {
            consent_challenge: hidden(step.text, 'consent_challenge'),
            csrf_token: hidden(step.text, 'csrf_token'),
            organisation: tenant.organisations[0]!.id,
            decision: 'allow',
          },
        });
      } else if (step.location && !step.location.startsWith(tenant.client.redirect_uri)) {
        step = await agent.request(step.location);
      } else break;
    }
    const code = step.location ? new URL(step.location).searchParams.get('code') : null;
    expect(code).toBeTruthy();

    // the relying party's back end redeems the code without a trace context of its own
    const token = await redeem(stack, tenant, code!, verifier);
    expect(token.status).toBe(200);

    // and calls the API in its trace
    const api = await fetch(apiUrl, {
      headers: { authorization: `Bearer ${token.body.access_token}`, traceparent },
    });
    expect(api.status).toBe(200);

    const tokensConsumer = SPANS.consume(`${stack.topicPrefix}${TOPICS.tokens}`);
    const grantsConsumer = SPANS.consume(`${stack.topicPrefix}${TOPICS.grants}`);
    // consumers run asynchronously: wait for the events of the redemption to be consumed in the trace
    await eventually(
      () =>
        ['CodeRedeemed', 'RefreshTokenIssued'].every((type) =>
          named(inTrace(traceId), tokensConsumer).some((s) => s.attributes['grantline.event_type'] === type),
        ) && named(inTrace(traceId), grantsConsumer).length > 0
          ? true
          : undefined,
      { what: 'the consumers of the flow’s events to continue its trace', timeoutMs: 20_000 },
    );
    const trace = inTrace(traceId);

    // authorize: the HTTP server span, named by its route, continuing the relying party's context
    const authorize = named(trace, 'GET /oauth2/authorize');
    expect(authorize).toHaveLength(1);
    expect(authorize[0]!.kind).toBe(SpanKind.SERVER);
    expect(authorize[0]!.attributes['http.route']).toBe('/oauth2/authorize');
    expect(authorize[0]!.attributes['http.response.status_code']).toBe(303);

    // consent's grant decision runs in the flow's trace, linked to the browser request that made it
    const consent = named(trace, SPANS.flowStep('consent'));
    expect(consent).toHaveLength(1);
    const consentRequest = named(spans(), 'POST /consent');
    expect(consentRequest).toHaveLength(1);
    expect(consentRequest[0]!.spanContext().traceId).not.toBe(traceId);
    expect(consent[0]!.links.map((l) => l.context.spanId)).toContain(consentRequest[0]!.spanContext().spanId);

    // token: the redemption continues the flow's trace, linked to the token request's own span
    const redemption = named(trace, SPANS.codeRedemption);
    expect(redemption).toHaveLength(1);
    const tokenRequest = named(spans(), 'POST /oauth2/token');
    expect(tokenRequest).toHaveLength(1);
    expect(tokenRequest[0]!.spanContext().traceId).not.toBe(traceId);
    expect(redemption[0]!.links.map((l) => l.context.spanId)).toContain(
      tokenRequest[0]!.spanContext().spanId,
    );
    // the events it appended are in the trace, under the redemption
    const appends = named(trace, SPANS.append).filter(
      (s) => s.parentSpanContext?.spanId === redemption[0]!.spanContext().spanId,
    );
    expect(appends.length).toBeGreaterThan(0);

    // Kafka: consumers of the tokens topic processed the redemption's events in the trace (consent's
    // grant usage the code's redemption, introspection the refresh family); the access token's own
    // event, which no consumer handles, is passed over by its type header, unopened, so has no span
    const consumed = named(trace, tokensConsumer);
    expect(consumed.every((s) => s.kind === SpanKind.CONSUMER)).toBe(true);
    const consumedTypes = consumed.map((s) => s.attributes['grantline.event_type']);
    expect(consumedTypes).toEqual(expect.arrayContaining(['CodeRedeemed', 'RefreshTokenIssued']));
    expect(consumedTypes).not.toContain('AccessTokenIssued');
    expect(
      consumed
        .filter((s) => s.attributes['grantline.event_type'] === 'CodeRedeemed')
        .map((s) => s.attributes['grantline.consumer']),
    ).toEqual(['consent-grant-usage']);
    // the relay's batch span is linked to the trace (one span per batch, many traces)
    const relayed = spans().filter(
      (s) => s.name === SPANS.relayPublish && s.links.some((l) => l.context.traceId === traceId),
    );
    expect(relayed.length).toBeGreaterThan(0);

    // the resource-server check
    const check = named(trace, SPANS.resourceServerCheck);
    expect(check).toHaveLength(1);
    expect(check[0]!.parentSpanContext?.spanId).toBe(traceparent.split('-')[2]);

    // outgoing HTTP carries the trace: the SDK's JWKS fetch is a client span under the check, and the
    // token service's span for that request continues it (W3C traceparent over HTTP)
    const jwksFetch = trace.filter(
      (s) => s.kind === SpanKind.CLIENT && s.parentSpanContext?.spanId === check[0]!.spanContext().spanId,
    );
    expect(jwksFetch.map((s) => s.name)).toEqual(['GET']);
    const jwksServed = named(trace, 'GET /oauth2/jwks');
    expect(jwksServed).toHaveLength(1);
    expect(jwksServed[0]!.parentSpanContext?.spanId).toBe(jwksFetch[0]!.spanContext().spanId);

    // Postgres: the redemption's appends are queries in the trace, named as instrumentation-pg names them
    const appendQueries = trace.filter((s) =>
      appends.some((a) => a.spanContext().spanId === s.parentSpanContext?.spanId),
    );
    expect(appendQueries.length).toBeGreaterThan(0);
    for (const query of appendQueries) {
      expect(query.kind).toBe(SpanKind.CLIENT);
      expect(query.name).toMatch(/^pg\.query:[A-Z]+ \S+$/);
      expect(query.attributes['db.system.name']).toBe('postgresql');
      expect(typeof query.attributes['db.query.text']).toBe('string');
    }
    // Redis: the sign-in's limiter commands are spans of its request
    const signIn = named(spans(), 'POST /login');
    expect(signIn).toHaveLength(1);
    const redisCommands = spans().filter(
      (s) =>
        s.parentSpanContext?.spanId === signIn[0]!.spanContext().spanId &&
        s.attributes['db.system.name'] === 'redis',
    );
    expect(redisCommands.length).toBeGreaterThan(0);
    expect(redisCommands.every((s) => s.kind === SpanKind.CLIENT)).toBe(true);
    // no span records a credential: parameter values, keys and bodies stay out of telemetry
    const recorded = JSON.stringify(spans().map((s) => s.attributes));
    for (const secret of [
      token.body.access_token,
      token.body.refresh_token,
      code!,
      tenant.user.password,
      tenant.client.client_secret!,
    ])
      expect(recorded).not.toContain(secret);

    // one trace id over all of them
    const ids = new Set(
      [authorize, consent, redemption, consumed, check, jwksFetch, jwksServed, appendQueries]
        .flat()
        .map((s) => s.spanContext().traceId),
    );
    expect([...ids]).toEqual([traceId]);
  });

  it('counts what the flow did in the metrics: per route template, tokens by grant type, relay and consumer lag', async () => {
    // a route with a parameter (RFC 7592 client configuration; 401 without its token)
    const configuration = await fetch(`${stack.issuer}/oauth2/register/${tenant.client.client_id}`);
    expect(configuration.status).toBe(401);
    // the services of this process share one meter provider: any management listener serves it all
    const text = await (await fetch(`${stack.tokenManagementUrl}/metrics`)).text();
    const series = (name: string) => text.split('\n').filter((l) => l.startsWith(name));
    expect(series('grantline_tokens_issued_total').join('\n')).toMatch(
      /grantline_grant_type="authorization_code".*\} [1-9]/,
    );
    const routes = new Set(
      series('http_server_request_duration_count').map((l) => /http_route="([^"]*)"/.exec(l)?.[1]),
    );
    expect(routes).toContain('/oauth2/token');
    expect(routes).toContain('/oauth2/authorize');
    expect(routes).toContain('/consent');
    // templates, never raw paths with ids in them
    expect(routes).toContain('/oauth2/register/:client_id');
    expect(text).not.toContain(tenant.client.client_id);
    expect(series('grantline_relay_lag_count').length).toBeGreaterThan(0);
    expect(series('grantline_consumer_lag').length).toBeGreaterThan(0);
  });
});
