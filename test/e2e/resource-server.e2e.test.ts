import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ResourceServerOptions, requireAccessToken } from '@grantline/resource-server';
import express from 'express';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { basic, type Stack, startStack, tokenRequest } from './stack.ts';

const INVOICES = 'https://invoices.example/';
const PAYROLL = 'https://payroll.example/';
const TTL_SECONDS = 90;

/**
 * Tokens of the running token service at resource servers built with the SDK: audience restriction
 * (security.md item 40) and clock skew between the two (F12). Access tokens live 90 s here.
 */
describe('resource servers: audience and clock skew', () => {
  let stack: Stack;
  let client: { client_id: string; client_secret: string };
  const servers: Server[] = [];

  /** a resource server protected by the SDK with these options; returns a call with a bearer token */
  const resourceServer = async (options: Partial<ResourceServerOptions> & { audience: string }) => {
    const app = express();
    app.get(
      '/me',
      requireAccessToken({ issuer: stack.issuer, jwksUri: `${stack.tokenUrl}/oauth2/jwks`, ...options }),
      (_req, res) => void res.json(res.locals.token),
    );
    const server = await new Promise<Server>((ok) => {
      const s = app.listen(0, '127.0.0.1', () => ok(s));
    });
    servers.push(server);
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/me`;
    return (token: string) => fetch(url, { headers: { authorization: `Bearer ${token}` } });
  };
  const tokenFor = async (resource: string) => {
    const res = await tokenRequest(
      stack,
      { grant_type: 'client_credentials', resource },
      { authorization: basic(client.client_id, client.client_secret) },
    );
    expect(res.status).toBe(200);
    return res.body.access_token as string;
  };
  const expectRefused = async (res: Response) => {
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
  };

  beforeAll(async () => {
    stack = await startStack(inject('infra'), { ACCESS_TOKEN_TTL_SECONDS: String(TTL_SECONDS) });
    await stack.defineScopes({ 'invoices.read': 'Read your invoices' });
    client = (await stack.register({
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'invoices.read',
      resources: [INVOICES, PAYROLL],
    })) as typeof client;
  }, 120_000);
  afterAll(async () => {
    for (const s of servers) s.close();
    await stack?.stop();
  });

  it('item 40: a token for one resource server is refused at another', async () => {
    const invoices = await resourceServer({ audience: INVOICES });
    const payroll = await resourceServer({ audience: PAYROLL });
    const forInvoices = await tokenFor(INVOICES);
    const forPayroll = await tokenFor(PAYROLL);
    expect(decodeJwt(forInvoices).aud).toBe(INVOICES);
    expect((await invoices(forInvoices)).status).toBe(200);
    expect((await payroll(forPayroll)).status).toBe(200);
    await expectRefused(await payroll(forInvoices));
    await expectRefused(await invoices(forPayroll));
  });

  it('F12: a resource server 2 minutes ahead refuses a fresh 90 s token as expired, unless its clock tolerance covers the skew', async () => {
    const ahead = () => new Date(Date.now() + 120_000);
    const token = await tokenFor(INVOICES);
    // to this server the token expired 30 s ago: more than the default 5 s tolerance
    await expectRefused(await (await resourceServer({ audience: INVOICES, now: ahead }))(token));
    const tolerant = await resourceServer({ audience: INVOICES, now: ahead, clockToleranceSeconds: 150 });
    expect((await tolerant(token)).status).toBe(200);
  });

  it('F12: a resource server 2 minutes behind accepts a fresh token, and one the token service holds expired for up to the skew', async () => {
    const behind = await resourceServer({ audience: INVOICES, now: () => new Date(Date.now() - 120_000) });
    const token = await tokenFor(INVOICES);
    // iat lies in this server's future; RFC 9068 §4 does not ask to refuse that, and there is no nbf
    expect((await behind(token)).status).toBe(200);
    // 30 s after the token service's exp: an in-sync server refuses, one 2 minutes slow still accepts.
    // A slow clock lengthens a token's life by the skew; the deny-list, not exp, ends tokens early.
    const exp = decodeJwt(token).exp!;
    const at = (seconds: number) => () => new Date(seconds * 1000);
    await expectRefused(await (await resourceServer({ audience: INVOICES, now: at(exp + 30) }))(token));
    expect(
      (await (await resourceServer({ audience: INVOICES, now: at(exp + 30 - 120) }))(token)).status,
    ).toBe(200);
  });
});
