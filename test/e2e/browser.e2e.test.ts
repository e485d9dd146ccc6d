import type { Server } from 'node:http';
import { invoicesApi } from '@grantline/example-resource-server';
import { freePort } from '@grantline/testing';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { chromiumPath, launchChromium } from './chromium.ts';
import { createTenant, type Tenant } from './flow.ts';
import { type Stack, startStack } from './stack.ts';

const executablePath = chromiumPath();
if (!executablePath)
  console.warn(
    'browser.e2e: SKIPPED, no Chromium found (set CHROMIUM_PATH, or install /usr/bin/chromium or /usr/bin/chromium-browser)',
  );

const CLIENT_NAME = 'Ledger App (browser)';
type Org = Tenant['organisations'][number];

// The issuer in tests is http://127.0.0.1; the library refuses plain http unless told.
const insecure = { [oauth.allowInsecureRequests]: true } as const;

/**
 * The whole story as its users see it: a person signs in and consents in a real browser, and an app
 * built on a certified OAuth client library (oauth4webapi) redeems the code with PKCE, refreshes,
 * and calls the example resource server, which enforces scopes and connected organisations.
 */
describe.skipIf(!executablePath)('in a real browser, with a certified client library', () => {
  let stack: Stack;
  let tenant: Tenant;
  let browser: Browser;
  let api: Server;
  let apiUrl: string;

  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    tenant = await createTenant(stack, { client_name: CLIENT_NAME });
    browser = await launchChromium(executablePath!);
    const port = await freePort();
    apiUrl = `http://127.0.0.1:${port}`;
    // Tokens requested without `resource` are issued for the issuer as audience.
    const app = invoicesApi({
      issuer: stack.issuer,
      jwksUri: `${stack.tokenUrl}/oauth2/jwks`,
      audience: stack.issuer,
    });
    api = await new Promise<Server>((resolve) => {
      const server = app.listen(port, '127.0.0.1', () => resolve(server));
    });
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (api ? api.close(resolve) : resolve(undefined)));
    await stack?.stop();
  });

  it('signs in, connects two of three organisations, and the app reaches only those', async () => {
    const [acme, globex, initech] = [0, 1, 2].map((i) => tenant.organisations[i]!) as [Org, Org, Org];
    const issuer = new URL(stack.issuer);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    );
    const client: oauth.Client = { client_id: tenant.client.client_id };
    const clientAuth = oauth.ClientSecretBasic(tenant.client.client_secret!);
    const redirectUri = tenant.client.redirect_uri;
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const authorize = new URL(as.authorization_endpoint!);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: redirectUri,
      scope: tenant.scopes.join(' '),
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();

    const page = await browser.newPage();
    // app.example does not exist: answer its callback in the browser so the final URL, with the
    // code, is what the app would receive.
    await page.route('https://app.example/**', (route) =>
      route.fulfill({ status: 200, contentType: 'text/plain', body: 'signed in' }),
    );

    await page.goto(authorize.href);
    await page.getByLabel('Username').fill(tenant.user.username);
    await page.getByLabel('Password').fill(tenant.user.password);
    const consentResponse = page.waitForResponse(
      (r) => r.url().startsWith(`${stack.consentUrl}/consent`) && r.request().method() === 'GET',
    );
    await page.getByRole('button', { name: 'Sign in' }).click();
    const consent = await consentResponse;
    expect(consent.status()).toBe(200);
    // RFC 9700 §4.16: the consent page must not be framed (clickjacking).
    expect(consent.headers()['x-frame-options']).toBe('DENY');
    await page.getByRole('button', { name: 'Allow' }).waitFor();
    // What the user must see to decide: who asks, and for what, in words rather than scope names.
    for (const shown of [`${CLIENT_NAME} wants access`, 'Read your invoices', 'Create and edit invoices'])
      expect(await page.getByText(shown, { exact: true }).isVisible(), shown).toBe(true);

    // All three organisations are offered and none is ticked for the user: the choice is theirs.
    for (const o of tenant.organisations)
      expect(await page.getByLabel(o.name).isChecked(), o.name).toBe(false);
    await page.getByLabel(acme.name).check();
    await page.getByLabel(globex.name).check();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${redirectUri}?**`);
    const callback = new URL(page.url());
    await page.close();

    // The app's side, entirely through oauth4webapi: it checks state and iss (RFC 9207) itself.
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(
        as,
        client,
        clientAuth,
        params,
        redirectUri,
        verifier,
        insecure,
      ),
    );
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token!, insecure),
    );
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    const claims = decodeJwt(refreshed.access_token);
    expect(claims.sub).toBe(tenant.user.id);
    expect(claims.organisations).toEqual([acme.id, globex.id]);
    expect(claims.grant_id).toBeTruthy();
    expect(claims.grant_id).toBe(tokens.grant_id);
    expect(claims.grant_id).toBe(refreshed.grant_id);

    const invoices = (organisationId: string) =>
      oauth.protectedResourceRequest(
        refreshed.access_token,
        'GET',
        new URL(`${apiUrl}/organisations/${organisationId}/invoices`),
        undefined,
        undefined,
        insecure,
      );
    const ok = await invoices(acme.id);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ organisation: acme.id });
    // The third organisation was not connected: the token is valid, the access is not. The library
    // turns the RFC 6750 challenge into an error the app can act on.
    const refused = await invoices(initech.id).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    const challenge = refused as oauth.WWWAuthenticateChallengeError;
    expect(challenge.status).toBe(403);
    expect(challenge.cause[0]?.parameters.error).toBe('insufficient_scope');
    // No token at all (a plain fetch: the library always sends one).
    expect((await fetch(`${apiUrl}/organisations/${acme.id}/invoices`)).status).toBe(401);
  });
});
