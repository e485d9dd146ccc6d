import { offsetClock } from '@grantline/clock';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Tenant } from './flow.ts';
import { API, type Client, connector, startIntrospectionStack } from './introspection-fixture.ts';
import { basic, type Stack } from './stack.ts';

interface StreamEvent {
  id?: string | undefined;
  event: string;
  data: { key?: string; sequence?: number; time?: string; kind?: string; grantId?: string };
}

/** The revocation stream (SSE) resource servers follow: facts, heartbeats, resuming, who may read it. */
describe('the revocation stream (SSE)', () => {
  const clock = offsetClock();
  let stack: Stack;
  let tenant: Tenant;
  let rs: Client;
  beforeAll(async () => {
    ({ stack, tenant, rs } = await startIntrospectionStack(inject('infra'), clock));
  }, 120_000);
  afterAll(() => stack?.stop());
  const connect = connector(
    () => stack,
    () => tenant,
  );

  it('streams revocation facts and heartbeats to resource servers (SSE), resuming after Last-Event-ID', async () => {
    const read = async (headers: Record<string, string>, until: (events: StreamEvent[]) => boolean) => {
      const abort = new AbortController();
      const res = await fetch(`${stack.issuer}/oauth2/revocations/stream`, {
        headers: { authorization: basic(rs.client_id, rs.client_secret), ...headers },
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const events: StreamEvent[] = [];
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      const deadline = Date.now() + 20_000;
      try {
        while (!until(events) && Date.now() < deadline) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const field = (name: string) =>
              block
                .split('\n')
                .find((l) => l.startsWith(`${name}: `))
                ?.slice(name.length + 2);
            const event = field('event');
            if (event) events.push({ id: field('id'), event, data: JSON.parse(field('data')!) });
          }
        }
      } finally {
        abort.abort();
      }
      return events;
    };
    const tokens = await connect();
    const del = await fetch(`${stack.consentUrl}/oauth2/grants/${tokens.grant_id}`, {
      method: 'DELETE',
      headers: { authorization: basic(tenant.client.client_id, tenant.client.client_secret!) },
    });
    expect(del.status).toBe(204);
    const key = `grant:${tokens.grant_id}`;
    const first = await read(
      {},
      (events) => events.some((e) => e.data.key === key) && events.some((e) => e.event === 'heartbeat'),
    );
    const fact = first.find((e) => e.data.key === key)!;
    expect(fact).toMatchObject({ event: 'revocation', data: { kind: 'grant', grantId: tokens.grant_id } });
    expect(fact.id).toBe(String(fact.data.sequence));
    const heartbeat = first.find((e) => e.event === 'heartbeat')!;
    expect(Date.parse(heartbeat.data.time!)).toBeGreaterThan(0);
    // resumed after that fact: it is not sent again
    const resumed = await read({ 'last-event-id': fact.id! }, (events) =>
      events.some((e) => e.event === 'heartbeat'),
    );
    expect(resumed.some((e) => e.data.key === key)).toBe(false);
    // only resource-server clients may subscribe
    const refused = await fetch(`${stack.issuer}/oauth2/revocations/stream`, {
      headers: { authorization: basic(tenant.client.client_id, tenant.client.client_secret!) },
    });
    expect(refused.status).toBe(401);
    expect((await fetch(`${stack.issuer}/oauth2/revocations/stream`)).status).toBe(401);
  });

  it('ends an open stream within seconds once the admin takes the resource-server role back', async () => {
    const reader = await stack.registerResourceServer([API], 'Short-lived resource server');
    const res = await fetch(`${stack.issuer}/oauth2/revocations/stream`, {
      headers: { authorization: basic(reader.client_id, reader.client_secret) },
    });
    expect(res.status).toBe(200);
    const body = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let received = '';
    while (!received.includes('event: heartbeat')) received += (await body.read()).value ?? '';
    expect(
      (await stack.admin(`/clients/${reader.client_id}/resource-server`, undefined, 'DELETE')).status,
    ).toBe(204);
    const taken = Date.now();
    const ended = (async () => {
      for (;;) if ((await body.read()).done) return Date.now() - taken;
    })();
    const ms = await Promise.race([ended, new Promise<number>((ok) => setTimeout(() => ok(-1), 15_000))]);
    expect(ms, 'the stream ended after the role was taken back').toBeGreaterThanOrEqual(0);
    // and it cannot open again
    const again = await fetch(`${stack.issuer}/oauth2/revocations/stream`, {
      headers: { authorization: basic(reader.client_id, reader.client_secret) },
    });
    expect(again.status).toBe(401);
  });
});
