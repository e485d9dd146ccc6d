import type { Browser, Locator, Page } from 'playwright-core';
import { expect } from 'vitest';
import { authorizeUrl, pkce, redeem, type Tenant } from './flow.ts';
import type { Stack } from './stack.ts';

type Org = Tenant['organisations'][number];

/** What a connection gives the app: the redeemed tokens and the grant they belong to. */
export interface AppTokens {
  access_token: string;
  refresh_token: string;
  grant_id: string;
}

/**
 * The user's side of issue 9 in Chromium, shared by the browser tests: connecting the tenant's app
 * through the real sign-in and consent pages, and pressing the account page's disconnect buttons.
 */
export const browserUser = (stack: Stack, tenant: Tenant) => {
  /** A page whose requests to the app's redirect URI land (the app itself is not running). */
  const newPage = async (browser: Browser | { newPage: () => Promise<Page> }) => {
    const page = await browser.newPage();
    await page.route(`${new URL(tenant.client.redirect_uri).origin}/**`, (route) =>
      route.fulfill({ status: 200, contentType: 'text/plain', body: 'connected' }),
    );
    return page;
  };

  /** Fills the sign-in page if `page` shows it (the session may already be there). */
  const signInIfAsked = async (page: Page) => {
    if (!(await page.getByLabel('Username').isVisible())) return;
    await page.getByLabel('Username').fill(tenant.user.username);
    await page.getByLabel('Password').fill(tenant.user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };

  /** One authorization in `page` (signing in if asked), ticking `organisations`; the app's tokens. */
  const connect = async (
    page: Page,
    organisations: Org[],
    params: Record<string, string> = {},
  ): Promise<AppTokens> => {
    const { verifier, challenge } = pkce();
    await page.goto(
      authorizeUrl(stack, {
        response_type: 'code',
        client_id: tenant.client.client_id,
        redirect_uri: tenant.client.redirect_uri,
        scope: tenant.scopes.join(' '),
        state: 's',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        ...params,
      }),
    );
    await signInIfAsked(page);
    await page
      .getByRole('button', { name: 'Allow' })
      .waitFor()
      .catch(async (error: Error) => {
        // say where the flow went instead of the consent page (a timeout alone says nothing)
        const shown = await page
          .locator('body')
          .textContent()
          .catch(() => '(no body)');
        throw new Error(
          `no consent page: ${error.message}\nat ${page.url()}\n${(shown ?? '').slice(0, 500)}`,
        );
      });
    for (const o of organisations) await page.getByLabel(o.name).check();
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL(`${tenant.client.redirect_uri}?**`);
    const code = new URL(page.url()).searchParams.get('code')!;
    const tokens = await redeem(stack, tenant, code, verifier);
    expect(tokens.status).toBe(200);
    return tokens.body as unknown as AppTokens;
  };

  /**
   * Clicks a disconnect button (a plain form POST) and waits for the page its 303 leads back to.
   * Resolves with when the browser sent the POST and when its 303 began to arrive (Chromium's own
   * wall-clock timestamps, ms since the epoch as `Date.now()`): what propagation is measured from.
   */
  const press = async (page: Page, button: Locator) => {
    const reloaded = page.waitForResponse(
      (r) => r.url() === `${stack.issuer}/account/connections` && r.request().method() === 'GET',
    );
    const posted = page.waitForResponse(
      (r) => r.url() === `${stack.issuer}/account/connections` && r.request().method() === 'POST',
    );
    await button.click();
    const answer = await posted;
    expect(answer.status()).toBe(303);
    expect((await reloaded).status()).toBe(200);
    await page.waitForLoadState();
    const { startTime, responseStart } = answer.request().timing();
    return { sentAt: startTime, answeredAt: responseStart >= 0 ? startTime + responseStart : Date.now() };
  };

  /** The account page's section for one grant ("Connection n", headed by an id naming the grant). */
  const connectionOf = (page: Page, grantId: string) =>
    page.locator('section.grant', { has: page.locator(`h3[id="grant-${grantId}"]`) });

  return { newPage, signInIfAsked, connect, press, connectionOf };
};
