import { offsetClock } from '@grantline/clock';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTenant, redeem, refresh, runFlow, type Tenant } from './flow.ts';
import { basic, type Stack, startStack } from './stack.ts';

const NEW_GRANT = { params: { grant_management_action: 'create' } };

/**
 * `POST /oauth2/revoke` (RFC 7009) as a client sees it through the one origin, and
 * ../shared/research/security.md item 34. That the revoked access tokens stop working at resource
 * servers is the deny-list's part (revocation projector); here the facts it reads are asserted.
 */
describe('RFC 7009 token revocation', () => {
  const clock = offsetClock();
  let stack: Stack;
  let tenant: Tenant;
  let other: Tenant;

  const auth = (t: Tenant = tenant) => ({
    authorization: basic(t.client.client_id, t.client.client_secret!),
  });
  const revoke = async (form: Record<string, string>, headers: Record<string, string> = auth()) => {
    const res = await fetch(`${stack.tokenUrl}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, body: text ? JSON.parse(text) : undefined };
  };
  const tokensFor = async (t: Tenant = tenant) => {
    const flow = await runFlow(stack, t, NEW_GRANT);
    const res = await redeem(stack, t, flow.code!, flow.verifier);
    expect(res.status).toBe(200);
    return res.body as { access_token: string; refresh_token: string; grant_id: string };
  };
  /** the token service's own events of one type, newest first */
  const events = async (type: string) =>
    (
      await stack.db.pool.query<{ data: Record<string, unknown> }>(
        'SELECT data FROM token.events WHERE type = $1 ORDER BY position DESC',
        [type],
      )
    ).rows.map((r) => r.data);
  const revocationCount = async () =>
    Number(
      (
        await stack.db.pool.query(
          `SELECT count(*) AS n FROM token.events WHERE type IN ('TokenRevoked', 'RefreshFamilyRevoked')`,
        )
      ).rows[0].n,
    );

  beforeAll(async () => {
    stack = await startStack(inject('infra'), {}, { clock });
    tenant = await createTenant(stack);
    other = await createTenant(stack);
  }, 120_000);
  afterAll(() => stack?.stop());

  it('the metadata lists the revocation endpoint and its client authentication methods (RFC 8414 §2)', async () => {
    const meta = (await (
      await fetch(`${stack.issuer}/.well-known/oauth-authorization-server`)
    ).json()) as Record<string, unknown>;
    expect(meta.revocation_endpoint).toBe(`${stack.issuer}/oauth2/revoke`);
    expect(meta.revocation_endpoint_auth_methods_supported).toEqual(
      meta.token_endpoint_auth_methods_supported,
    );
  });

  it('item 34: revoking a refresh token answers 200; the family then fails with invalid_grant and its access tokens are listed', async () => {
    const first = await tokensFor();
    const rotated = (await refresh(stack, tenant, first.refresh_token)).body as {
      access_token: string;
      refresh_token: string;
    };
    const res = await revoke({ token: rotated.refresh_token, token_type_hint: 'refresh_token' });
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const again = await refresh(stack, tenant, rotated.refresh_token);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
    expect((await events('RefreshFamilyRevoked'))[0]).toMatchObject({
      reason: 'client',
      grantId: first.grant_id,
      accessTokenIds: [decodeJwt(first.access_token).jti, decodeJwt(rotated.access_token).jti],
    });
    // revoking it again changes nothing and still answers 200
    const count = await revocationCount();
    expect((await revoke({ token: rotated.refresh_token })).status).toBe(200);
    expect(await revocationCount()).toBe(count);
  });

  it('item 34: a rotated (earlier) refresh token of the family revokes the family too', async () => {
    const first = await tokensFor();
    const rotated = (await refresh(stack, tenant, first.refresh_token)).body as { refresh_token: string };
    expect((await revoke({ token: first.refresh_token })).status).toBe(200);
    expect((await refresh(stack, tenant, rotated.refresh_token)).body.error).toBe('invalid_grant');
  });

  it('revoking an access token records TokenRevoked for its jti once, and leaves the refresh token working', async () => {
    const tokens = await tokensFor();
    const { jti, grant_id } = decodeJwt(tokens.access_token);
    expect((await revoke({ token: tokens.access_token, token_type_hint: 'access_token' })).status).toBe(200);
    expect((await events('TokenRevoked'))[0]).toEqual({
      tokenId: jti,
      tokenType: 'access_token',
      clientId: tenant.client.client_id,
      grantId: grant_id,
    });
    const count = await revocationCount();
    expect((await revoke({ token: tokens.access_token })).status).toBe(200);
    expect(await revocationCount()).toBe(count);
    expect((await refresh(stack, tenant, tokens.refresh_token)).status).toBe(200);
  });

  it('RFC 7009 §2.1: token_type_hint is only a hint: a wrong or unknown hint still revokes the token', async () => {
    const a = await tokensFor();
    expect((await revoke({ token: a.refresh_token, token_type_hint: 'access_token' })).status).toBe(200);
    expect((await refresh(stack, tenant, a.refresh_token)).body.error).toBe('invalid_grant');
    const b = await tokensFor();
    expect((await revoke({ token: b.access_token, token_type_hint: 'refresh_token' })).status).toBe(200);
    expect((await events('TokenRevoked'))[0]).toMatchObject({ tokenId: decodeJwt(b.access_token).jti });
    const c = await tokensFor();
    expect((await revoke({ token: c.refresh_token, token_type_hint: 'pct' })).status).toBe(200);
    expect((await refresh(stack, tenant, c.refresh_token)).body.error).toBe('invalid_grant');
  });

  it('item 34: an unknown or garbled token answers 200 and revokes nothing', async () => {
    const tokens = await tokensFor();
    const [family, generation] = tokens.refresh_token.split('.');
    const count = await revocationCount();
    for (const token of [
      'not-a-token',
      `${family}.${generation}.${'A'.repeat(43)}`, // a real family, a wrong secret
      `${'B'.repeat(22)}.0.${'C'.repeat(43)}`,
      `${tokens.access_token.slice(0, -4)}AAAA`, // a tampered signature
      'eyJhbGciOiJub25lIn0.eyJqdGkiOiJ4In0.', // alg none
      'a.b.c.d.e',
    ]) {
      const res = await revoke({ token });
      expect(res.status, token).toBe(200);
      expect(res.text).toBe('');
    }
    expect(await revocationCount()).toBe(count);
    expect((await refresh(stack, tenant, tokens.refresh_token)).status).toBe(200);
  });

  it("item 34: another client's refresh and access tokens answer 200 and stay valid", async () => {
    const theirs = await tokensFor(other);
    const count = await revocationCount();
    expect((await revoke({ token: theirs.refresh_token })).status).toBe(200);
    expect((await revoke({ token: theirs.access_token })).status).toBe(200);
    expect(await revocationCount()).toBe(count);
    expect((await refresh(stack, other, theirs.refresh_token)).status).toBe(200);
  });

  it('item 34, RFC 7009 §2.2.1: an authorization code is unsupported_token_type, and stays redeemable', async () => {
    const flow = await runFlow(stack, tenant, NEW_GRANT);
    const res = await revoke({ token: flow.code! });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: 'unsupported_token_type',
      error_description: expect.stringMatching(/authorization codes cannot be revoked/),
    });
    // another client learns nothing about it
    expect((await revoke({ token: flow.code! }, auth(other))).status).toBe(200);
    expect((await redeem(stack, tenant, flow.code!, flow.verifier)).status).toBe(200);
  });

  it('an expired access token is a no-op: 200 and nothing recorded', async () => {
    const tokens = await tokensFor();
    clock.advance(601_000);
    try {
      const count = await revocationCount();
      expect((await revoke({ token: tokens.access_token })).status).toBe(200);
      expect(await revocationCount()).toBe(count);
    } finally {
      clock.advance(-601_000);
    }
  });

  it('RFC 7009 §2.1: the client authenticates as at the token endpoint; errors in OAuth form', async () => {
    const tokens = await tokensFor();
    const none = await revoke({ token: tokens.refresh_token }, {});
    expect(none.status).toBe(401);
    expect(none.body.error).toBe('invalid_client');
    const wrong = await revoke(
      { token: tokens.refresh_token },
      { authorization: basic(tenant.client.client_id, 'wrong') },
    );
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic/);
    // nothing revoked by an unauthenticated request
    expect((await refresh(stack, tenant, tokens.refresh_token)).status).toBe(200);
    const missing = await revoke({});
    expect(missing.status).toBe(400);
    expect(missing.body.error).toBe('invalid_request');
    const twice = await fetch(`${stack.tokenUrl}/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth() },
      body: 'token=a&token=b',
    });
    expect(twice.status).toBe(400);
    expect(((await twice.json()) as { error: string }).error).toBe('invalid_request');
  });

  it('repeated failed client authentications at the revocation endpoint lock that client out (429), as at the token endpoint', async () => {
    const victim = await createTenant(stack);
    const headers = { authorization: basic(victim.client.client_id, 'wrong') };
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await revoke({ token: 'x' }, headers)).status);
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
    // the right credential is never refused
    expect((await revoke({ token: 'x' }, auth(victim))).status).toBe(200);
  });

  it('a public client revokes its own refresh token with its client_id alone', async () => {
    const pub = await createTenant(stack, { token_endpoint_auth_method: 'none' });
    const flow = await runFlow(stack, pub, NEW_GRANT);
    const tokens = (await redeem(stack, pub, flow.code!, flow.verifier)).body as { refresh_token: string };
    expect((await revoke({ token: tokens.refresh_token, client_id: pub.client.client_id }, {})).status).toBe(
      200,
    );
    expect((await refresh(stack, pub, tokens.refresh_token)).body.error).toBe('invalid_grant');
  });
});
