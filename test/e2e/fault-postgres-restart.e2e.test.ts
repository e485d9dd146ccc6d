import { setTimeout as sleep } from 'node:timers/promises';
import { eventually, type PostgresServer, startPrivatePostgres } from '@grantline/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Agent, authorizeUrl, createTenant, redeem, refresh, runFlow, type Tenant } from './flow.ts';
import { basic, type Stack, startStack, tokenRequest } from './stack.ts';

// This test restarts its Postgres, so the whole stack runs on a cluster of its own, never the shared one.
const postgres = await startPrivatePostgres();
if (!postgres) console.warn('SKIPPED Postgres restart test: needs the PostgreSQL server binaries (Debian)');

interface Answer {
  at: number;
  status: number;
  error?: string;
  retryAfter: string | null;
}

const answer = (res: Awaited<ReturnType<typeof tokenRequest>>): Answer => ({
  at: Date.now(),
  status: res.status,
  ...(typeof res.body.error === 'string' && { error: res.body.error }),
  retryAfter: res.headers.get('retry-after'),
});

/** security.md F6: Postgres goes away (a fast shutdown ends every session) and comes back. */
describe.skipIf(!postgres)('F6: Postgres restarted while tokens are being issued', () => {
  let stack: Stack;
  let tenant: Tenant;
  let machine: { client_id: string; client_secret: string };
  beforeAll(async () => {
    stack = await startStack({ ...inject('infra'), databaseUrl: (postgres as PostgresServer).url });
    tenant = await createTenant(stack);
    machine = (await stack.register({
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'invoices.read',
    })) as typeof machine;
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await postgres?.stop();
  });

  it('F6: only 503 temporarily_unavailable with Retry-After while it is down, no code redeemed twice, and everything works after', async () => {
    // codes minted before the outage (one sign-in, the grant then covers the rest), redeemed across it
    const agent = new Agent();
    const flows = [];
    for (let i = 0; i < 8; i++) flows.push(await runFlow(stack, tenant, { agent }));
    expect(flows.every((f) => f.code)).toBe(true);

    const issued: Answer[] = [];
    const byCode = new Map<string, Answer[]>();
    let running = true;
    const issuing = Array.from({ length: 3 }, async () => {
      while (running) {
        const res = await tokenRequest(
          stack,
          { grant_type: 'client_credentials' },
          { authorization: basic(machine.client_id, machine.client_secret) },
        );
        issued.push(answer(res));
        if (res.status !== 200) await sleep(50);
      }
    });
    // one code every 250 ms, each retried as a client would until it gets an answer that is not 503
    const redeeming = (async () => {
      for (const flow of flows) {
        const answers: Answer[] = [];
        byCode.set(flow.code!, answers);
        for (let attempt = 0; attempt < 200; attempt++) {
          const a = answer(await redeem(stack, tenant, flow.code!, flow.verifier));
          answers.push(a);
          if (a.status !== 503) break;
          await sleep(100);
        }
        await sleep(250);
      }
    })();

    await sleep(400);
    const downAt = Date.now();
    await postgres!.pause();
    await sleep(300);
    // a page that needs the database answers 503 with Retry-After too, not a 500
    const page = await fetch(
      authorizeUrl(stack, {
        response_type: 'code',
        client_id: tenant.client.client_id,
        redirect_uri: tenant.client.redirect_uri,
        code_challenge: 'x'.repeat(43),
        code_challenge_method: 'S256',
      }),
      { redirect: 'manual' },
    );
    await sleep(1_200);
    await postgres!.resume();
    const upAt = Date.now();
    await eventually(() => (issued.some((a) => a.at > upAt && a.status === 200) ? true : undefined), {
      what: 'client credentials to succeed again',
    });
    await redeeming;
    running = false;
    await Promise.all(issuing);

    expect(page.status).toBe(503);
    expect(page.headers.get('retry-after')).toBe('1');
    const all = [...issued, ...[...byCode.values()].flat()];
    const unavailable = all.filter((a) => a.status === 503);
    const counts = new Map<string, number>();
    for (const a of all)
      counts.set(`${a.status} ${a.error ?? ''}`, (counts.get(`${a.status} ${a.error ?? ''}`) ?? 0) + 1);
    const statuses = [...counts].map(([k, n]) => `${k.trim()}: ${n}`).join(', ');
    const codes = [...byCode.values()].map((answers) => answers.map((a) => a.status).join('>'));
    console.log(
      `Postgres restart (down ${upAt - downAt} ms): ${all.length} token requests; ${statuses}; codes: ${codes.join(' ')}`,
    );
    // the outage was seen, and answered only in the retriable form
    expect(unavailable.length).toBeGreaterThan(0);
    for (const a of unavailable) {
      expect(a.error).toBe('temporarily_unavailable');
      expect(Number(a.retryAfter)).toBeGreaterThan(0);
    }
    expect(issued.filter((a) => a.status !== 200 && a.status !== 503)).toEqual([]);
    // each code: 503s, then one 200; or, when a redemption committed but its answer was lost in the
    // outage, 503s and then invalid_grant for the retry (the F11 behaviour)
    for (const [code, answers] of byCode) {
      const last = answers.at(-1)!;
      expect(
        answers.slice(0, -1).every((a) => a.status === 503),
        code,
      ).toBe(true);
      expect(
        last.status === 200 || (last.error === 'invalid_grant' && answers.length > 1),
        JSON.stringify(answers),
      ).toBe(true);
    }
    const { rows } = await stack.db.pool.query<{ redemptions: number }>(
      `SELECT count(*)::int AS redemptions FROM token.events WHERE type = 'CodeRedeemed' GROUP BY stream_id`,
    );
    expect(rows.length).toBe(flows.length);
    expect(rows.every((r) => r.redemptions === 1)).toBe(true);

    // and afterwards everything works: a new flow, its code, a refresh
    const after = await runFlow(stack, tenant, { agent });
    const tokens = await redeem(stack, tenant, after.code!, after.verifier);
    expect(tokens.status).toBe(200);
    expect((await refresh(stack, tenant, tokens.body.refresh_token as string)).status).toBe(200);
  }, 120_000);
});
