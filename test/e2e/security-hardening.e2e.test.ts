import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { eventually } from '@grantline/testing';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTenant, redeem, refresh, runFlow } from './flow.ts';
import { basic, type Stack, startStack, tokenRequest } from './stack.ts';

/**
 * A form POST from a chosen loopback source address (Linux routes all of 127.0.0.0/8 to lo), so one
 * test can be two callers: the attacker at 127.0.0.2 and the real client at 127.0.0.1.
 */
const postFrom = (localAddress: string, url: string, form: Record<string, string>, headers = {}) =>
  new Promise<{ status: number; headers: Record<string, unknown>; body: Record<string, unknown> }>(
    (resolve, reject) => {
      const body = new URLSearchParams(form).toString();
      const req = httpRequest(
        url,
        {
          method: 'POST',
          localAddress,
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        },
        (res) => {
          let text = '';
          res.on('data', (c) => {
            text += c;
          });
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: text ? JSON.parse(text) : {},
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    },
  );

/** A private_key_jwt client assertion (RFC 7523 §3) for the token endpoint of `stack`. */
const assertionFor = (stack: Stack, clientId: string, key: Parameters<SignJWT['sign']>[0]) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(`${stack.tokenUrl}/oauth2/token`)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(key);

describe('hardening review findings, through the running services', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(inject('infra'), {
      CLIENT_AUTH_FAILURES_PER_MINUTE: '5',
      PROJECTION_CATCH_UP_MS: '300',
    });
    await stack.defineScopes({ 'ledger.read': 'Read the ledger' });
  });
  afterAll(() => stack?.stop());

  it('finding 3: a correct credential is never refused, whoever failed before; failures from one address get 429 + Retry-After', async () => {
    const victim = await stack.register({ grant_types: ['client_credentials'], scope: 'ledger.read' });
    const token = `${stack.tokenUrl}/oauth2/token`;
    const form = { grant_type: 'client_credentials' };
    const statuses: number[] = [];
    let retryAfter: unknown;
    for (let i = 0; i < 12; i++) {
      const r = await postFrom('127.0.0.2', token, form, {
        authorization: basic(victim.client_id, `guess-${i}`),
      });
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers['retry-after'];
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(6).every((s) => s === 429)).toBe(true);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    // the correct secret is never refused: not from the client's own address, nor from the one the
    // guesses came from (behind a proxy every caller may share one address)
    for (const from of ['127.0.0.1', '127.0.0.2']) {
      const r = await postFrom(from, token, form, {
        authorization: basic(victim.client_id, victim.client_secret!),
      });
      expect(r.status, `correct secret from ${from}`).toBe(200);
    }
    // while guesses from that address go on getting 429
    const more = await postFrom('127.0.0.2', token, form, {
      authorization: basic(victim.client_id, 'guess-x'),
    });
    expect(more.status).toBe(429);
    const grants = await fetch(`${stack.consentUrl}/oauth2/grants/no-such-grant-0000`, {
      headers: { authorization: basic(victim.client_id, victim.client_secret!) },
    });
    expect(grants.status).toBe(404); // authenticated; the grant is unknown
  });

  it('finding 9: one client assertion is spent once across the token endpoint and Grant Management', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const reg = await stack.register({
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] },
      scope: 'ledger.read',
    });
    const assertion = await assertionFor(stack, reg.client_id, privateKey);
    const clientAuth = {
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    };
    const first = await tokenRequest(stack, { grant_type: 'client_credentials', ...clientAuth });
    expect(first.status).toBe(200);
    const replay = await fetch(`${stack.consentUrl}/oauth2/grants/no-such-grant-0000`, {
      method: 'DELETE',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(clientAuth).toString(),
    });
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('finding 10: a jwks_uri on the server’s own network is never fetched', async () => {
    const { createServer } = await import('node:http');
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] });
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.setHeader('content-type', 'application/json').end(jwks);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const { port } = server.address() as { port: number };
      const reg = await stack.register({
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks_uri: `http://localhost:${port}/jwks.json`,
        scope: 'ledger.read',
      });
      const assertion = await assertionFor(stack, reg.client_id, privateKey);
      const r = await tokenRequest(stack, {
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      });
      expect(r.status).toBe(401);
      expect(r.body).toMatchObject({ error: 'invalid_client' });
      expect(hits).toBe(0);
    } finally {
      server.close();
    }
  });

  it('finding 7: a refresh whose grant or user the token service does not know is refused once the catch-up wait is over', async () => {
    // a projection that has not seen them (lag, or a rebuild): here, rows the projection never had
    for (const forget of [
      (grantId: string) => stack.db.pool.query('DELETE FROM token.grants WHERE grant_id = $1', [grantId]),
      (_: string, userId: string) =>
        stack.db.pool.query('DELETE FROM token.users WHERE user_id = $1', [userId]),
    ]) {
      const tenant = await createTenant(stack); // a new user, client and grant each time
      const flow = await runFlow(stack, tenant);
      const tokens = await redeem(stack, tenant, flow.code!, flow.verifier);
      expect(tokens.status).toBe(200);
      await eventually(
        async () =>
          (
            await stack.db.pool.query('SELECT 1 FROM token.grants WHERE grant_id = $1', [
              tokens.body.grant_id,
            ])
          ).rowCount
            ? true
            : undefined,
        { what: 'the token service to know the grant' },
      );
      const known = await refresh(stack, tenant, tokens.body.refresh_token as string);
      expect(known.status).toBe(200);
      const deleted = await forget(tokens.body.grant_id as string, tenant.user.id);
      expect(deleted.rowCount).toBe(1);
      const started = Date.now();
      const unknown = await refresh(stack, tenant, known.body.refresh_token as string);
      expect(unknown.status).toBe(400);
      expect(unknown.body).toMatchObject({ error: 'invalid_grant' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(250); // it waited for the projection first
    }
  });

  it('a client works on every token instance the moment registration answers 201, and is refused the moment a delete or disable answers 204', async () => {
    const second = await stack.addTokenInstance();
    const registerNow = async () => {
      const res = await fetch(`${stack.registryUrl}/oauth2/register`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await stack.initialAccessToken()}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ grant_types: ['client_credentials'], scope: 'ledger.read' }),
      });
      expect(res.status).toBe(201);
      return (await res.json()) as {
        client_id: string;
        client_secret: string;
        registration_access_token: string;
      };
    };
    const tokenAt = async (url: string, c: { client_id: string; client_secret: string }) =>
      (
        await fetch(`${url}/oauth2/token`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: basic(c.client_id, c.client_secret),
          },
          body: 'grant_type=client_credentials',
        })
      ).status;
    for (let i = 0; i < 5; i++) {
      const c = await registerNow();
      // no waiting between the 201 and the first request, on either instance
      expect([await tokenAt(stack.tokenUrl, c), await tokenAt(second, c)]).toEqual([200, 200]);
      if (i % 2 === 0) {
        const deleted = await fetch(`${stack.registryUrl}/oauth2/register/${c.client_id}`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${c.registration_access_token}` },
        });
        expect(deleted.status).toBe(204);
      } else {
        expect((await stack.admin(`/clients/${c.client_id}/disable`, {})).status).toBe(204);
      }
      expect([await tokenAt(stack.tokenUrl, c), await tokenAt(second, c)]).toEqual([401, 401]);
    }
  });

  it('the metadata document is revalidated on every use, so a new scope is visible at once', async () => {
    const url = `${stack.issuer}/.well-known/oauth-authorization-server`;
    const first = await fetch(url);
    expect(first.headers.get('cache-control')).toMatch(/no-cache/);
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^".+"$/);
    expect((await fetch(url, { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect(
      (await stack.admin('/scopes', { name: 'ledger.write', description: 'Write the ledger' })).status,
    ).toBe(201);
    const after = await fetch(url, { headers: { 'if-none-match': etag } });
    expect(after.status).toBe(200);
    expect(((await after.json()) as { scopes_supported: string[] }).scopes_supported).toContain(
      'ledger.write',
    );
  });

  it('a sign-in right after a password change is not mistaken for one before it (same second)', async () => {
    const tenant = await createTenant(stack);
    for (let i = 0; i < 3; i++) {
      const password = `new password ${i} ${randomUUID()}`;
      const changed = await stack.admin(`/users/${tenant.user.id}/password`, { password });
      expect(changed.status).toBe(204);
      const flow = await runFlow(stack, { ...tenant, user: { ...tenant.user, password } });
      expect(flow.code).toBeTruthy();
      const tokens = await redeem(stack, tenant, flow.code!, flow.verifier);
      expect(tokens.status).toBe(200);
    }
  });
});
