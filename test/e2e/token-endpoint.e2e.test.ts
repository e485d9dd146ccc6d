import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADMIN_TOKEN, basic, type Stack, startStack, tokenRequest } from './stack.ts';

/** Bad input at the token endpoint: each case asserts the exact RFC 6749 §5.2 answer. Never a 500. */
describe('token endpoint: bad input', () => {
  let stack: Stack;
  let client: { client_id: string; client_secret: string };
  let auth: string;
  const statuses: number[] = [];
  const request = async (
    ...args: Parameters<typeof tokenRequest> extends [Stack, ...infer R] ? R : never
  ) => {
    const r = await tokenRequest(stack, ...args);
    statuses.push(r.status);
    return r;
  };

  beforeAll(async () => {
    stack = await startStack(inject('infra'), { CLIENT_AUTH_FAILURES_PER_MINUTE: '1000' });
    await stack.defineScopes({ 'reports.read': 'Read reports', 'reports.write': 'Write reports' });
    client = (await stack.register({
      grant_types: ['client_credentials'],
      scope: 'reports.read',
    })) as typeof client;
    auth = basic(client.client_id, client.client_secret);
  });
  afterAll(async () => {
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    await stack?.stop();
  });

  it('answers an unknown client and a wrong secret with the same 401 body and challenge', async () => {
    const unknown = await request(
      { grant_type: 'client_credentials' },
      { authorization: basic('cl_nobody', client.client_secret) },
    );
    const wrong = await request(
      { grant_type: 'client_credentials' },
      { authorization: basic(client.client_id, 'x'.repeat(43)) },
    );
    for (const r of [unknown, wrong]) {
      expect(r.status).toBe(401);
      expect(r.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
      expect(r.headers.get('www-authenticate')).toBe('Basic realm="grantline"');
    }
    const post = await request({
      grant_type: 'client_credentials',
      client_id: client.client_id,
      client_secret: 'wrong',
    });
    expect(post.status).toBe(401);
    expect(post.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });

  it('refuses a client that registered for Basic but sends its secret in the body', async () => {
    const r = await request({
      grant_type: 'client_credentials',
      client_id: client.client_id,
      client_secret: client.client_secret,
    });
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });

  it('requires grant_type', async () => {
    const r = await request({ scope: 'reports.read' }, { authorization: auth });
    expect(r).toMatchObject({
      status: 400,
      body: { error: 'invalid_request', error_description: 'grant_type is required' },
    });
  });

  it.each(['password', 'implicit', 'urn:ietf:params:oauth:grant-type:device_code', 'token-exchange'])(
    'answers unsupported_grant_type for %s',
    async (grantType) => {
      const r = await request(
        { grant_type: grantType, username: 'u', password: 'p' },
        { authorization: auth },
      );
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('unsupported_grant_type');
    },
  );

  it('answers invalid_scope for a scope the client may not have, or a malformed scope', async () => {
    const r = await request(
      { grant_type: 'client_credentials', scope: 'reports.read reports.write' },
      { authorization: auth },
    );
    expect(r).toMatchObject({
      status: 400,
      body: { error: 'invalid_scope', error_description: 'scope not allowed for this client: reports.write' },
    });
    const malformed = await request(
      { grant_type: 'client_credentials', scope: 'reports.read  "x"' },
      { authorization: auth },
    );
    expect(malformed).toMatchObject({
      status: 400,
      body: { error: 'invalid_scope', error_description: 'scope is malformed' },
    });
  });

  it('answers invalid_target for a resource the client may not address (RFC 8707)', async () => {
    const r = await request(
      { grant_type: 'client_credentials', resource: 'https://other.example/api' },
      { authorization: auth },
    );
    expect(r).toMatchObject({ status: 400, body: { error: 'invalid_target' } });
    const relative = await request(
      { grant_type: 'client_credentials', resource: '/api' },
      { authorization: auth },
    );
    expect(relative).toMatchObject({
      status: 400,
      body: { error: 'invalid_target', error_description: 'resource must be an absolute URI' },
    });
  });

  it('answers invalid_request for a repeated parameter', async () => {
    const r = await request('grant_type=client_credentials&scope=reports.read&scope=reports.read', {
      authorization: auth,
    });
    expect(r).toMatchObject({
      status: 400,
      body: { error: 'invalid_request', error_description: 'parameter scope is repeated' },
    });
  });

  it.each([
    ['Basic !!!', 'not base64'],
    ['Basic bm9jb2xvbg==', 'no colon'],
    ['Basic', 'no credentials'],
  ])('answers invalid_request for a malformed Basic header (%s: %s)', async (header) => {
    const r = await request({ grant_type: 'client_credentials' }, { authorization: header });
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_request');
  });

  it('answers invalid_request when two authentication methods are used at once', async () => {
    const r = await request(
      { grant_type: 'client_credentials', client_secret: 'x' },
      { authorization: auth },
    );
    expect(r).toMatchObject({
      status: 400,
      body: { error: 'invalid_request', error_description: 'use exactly one client authentication method' },
    });
  });

  it('answers invalid_request for a body that is not form-encoded', async () => {
    for (const type of ['application/json', 'text/plain', 'multipart/form-data; boundary=x']) {
      const res = await fetch(`${stack.tokenUrl}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': type, authorization: auth },
        body: JSON.stringify({ grant_type: 'client_credentials' }),
      });
      statuses.push(res.status);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        error: 'invalid_request',
        error_description: 'the request body must be application/x-www-form-urlencoded',
      });
    }
  });

  it('answers 413 for an oversized body, and keeps serving', async () => {
    const r = await request(
      { grant_type: 'client_credentials', junk: 'x'.repeat(100_000) },
      { authorization: auth },
    );
    expect(r.status).toBe(413);
    expect(r.body).toEqual({ error: 'invalid_request', error_description: 'request body too large' });
    expect((await request({ grant_type: 'client_credentials' }, { authorization: auth })).status).toBe(200);
  });

  it('ignores unknown parameters', async () => {
    const r = await request({ grant_type: 'client_credentials', foo: 'bar' }, { authorization: auth });
    expect(r.status).toBe(200);
  });

  it('refuses a disabled client and a rotated secret, and accepts the new one', async () => {
    const c = (await stack.register({
      grant_types: ['client_credentials'],
      scope: 'reports.read',
    })) as typeof client;
    const rotated = await stack.admin(`/clients/${c.client_id}/secret`, {});
    expect(rotated.status).toBe(200);
    const { client_secret } = (await rotated.json()) as { client_secret: string };
    const deadline = Date.now() + 5_000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      ok =
        (
          await request(
            { grant_type: 'client_credentials' },
            { authorization: basic(c.client_id, client_secret) },
          )
        ).status === 200;
    }
    expect(ok).toBe(true);
    expect(
      (
        await request(
          { grant_type: 'client_credentials' },
          { authorization: basic(c.client_id, c.client_secret) },
        )
      ).status,
    ).toBe(401);
    expect((await stack.admin(`/clients/${c.client_id}/disable`, {})).status).toBe(204);
    let refused = false;
    while (!refused && Date.now() < deadline + 5_000) {
      refused =
        (
          await request(
            { grant_type: 'client_credentials' },
            { authorization: basic(c.client_id, client_secret) },
          )
        ).status === 401;
    }
    expect(refused).toBe(true);
  });

  it('protects the key rotation endpoint', async () => {
    const res = await fetch(`${stack.tokenManagementUrl}/admin/keys/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}x` },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });
});
