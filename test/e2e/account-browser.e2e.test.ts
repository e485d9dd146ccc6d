import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { browserUser } from './browser-account.ts';
import { chromiumPath, launchChromium } from './chromium.ts';
import { createTenant, refresh, type Tenant } from './flow.ts';
import { basic, type Stack, startStack } from './stack.ts';

const executablePath = chromiumPath();
if (!executablePath)
  console.warn(
    'account-browser.e2e: SKIPPED, no Chromium found (set CHROMIUM_PATH, or install /usr/bin/chromium)',
  );

type Org = Tenant['organisations'][number];

/**
 * Issue 9, "Connected apps" as the user sees it in Chromium: three use cases (grants) of one app,
 * the first in two of three organisations; the account page reached through the sign-in page;
 * one organisation, then one connection, then the whole app disconnected with plain form buttons.
 */
describe.skipIf(!executablePath)('connected apps, in a real browser', () => {
  let stack: Stack;
  let tenant: Tenant;
  let browser: Browser;

  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    tenant = await createTenant(stack);
    browser = await launchChromium(executablePath!);
  });
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const organisationsOf = async (grantId: string) => {
    const res = await fetch(`${stack.issuer}/oauth2/grants/${grantId}`, {
      headers: { authorization: basic(tenant.client.client_id, tenant.client.client_secret!) },
    });
    return res.status === 200 ? ((await res.json()) as { organisations: Org[] }).organisations : res.status;
  };

  it('lists the app and its grants, and disconnects an organisation, a connection, then the app', async () => {
    const [acme, globex, initech] = [0, 1, 2].map((i) => tenant.organisations[i]!) as [Org, Org, Org];
    const { newPage, connect, press } = browserUser(stack, tenant);
    const flows = await newPage(browser);
    const a = await connect(flows, [acme, globex]);
    const b = await connect(flows, [globex], { grant_management_action: 'create' });
    const c = await connect(flows, [initech], { grant_management_action: 'create' });
    await flows.close();

    // another browser: the account page sends it through the sign-in page and back
    const context = await browser.newContext();
    const page = await context.newPage();
    const first = await page.goto(`${stack.issuer}/account/connections`);
    expect(page.url()).toBe(`${stack.issuer}/login?return=account`);
    expect(first?.headers()['x-frame-options']).toBe('DENY');
    await page.getByLabel('Username').fill(tenant.user.username);
    await page.getByLabel('Password').fill(tenant.user.password);
    const landed = page.waitForResponse((r) => r.url() === `${stack.issuer}/account/connections`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const response = await landed;
    expect(response.status()).toBe(200);
    // the consent page's protections: no framing (RFC 9700 §4.16), no caching, a strict CSP
    expect(response.headers()['x-frame-options']).toBe('DENY');
    expect(response.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(response.headers()['cache-control']).toBe('no-store');
    expect(await page.title()).toBe('Connected apps');

    const app = page.getByRole('region', { name: /^Ledger App / });
    await app.waitFor();
    const name = (await app.getByRole('heading', { level: 2 }).textContent())!;
    const connection = (n: number) => app.getByRole('region', { name: `Connection ${n}`, exact: true });
    expect(await app.getByRole('region', { name: /^Connection / }).count()).toBe(3);
    const one = connection(1);
    for (const shown of [acme.name, globex.name, 'Read your invoices', 'Create and edit invoices'])
      expect(await one.getByText(shown, { exact: true }).isVisible(), shown).toBe(true);
    expect(await one.getByText(/^Connected .* UTC; last used (.* UTC|never)\.$/).isVisible()).toBe(true);
    expect(await connection(3).getByText(initech.name, { exact: true }).isVisible()).toBe(true);

    // one organisation of the first connection: a confirmation, that organisation gone, the other kept
    await press(page, one.getByRole('button', { name: `Disconnect ${acme.name}`, exact: true }));
    expect(await page.getByRole('status').textContent()).toBe(`${acme.name} was disconnected from ${name}.`);
    expect(await connection(1).getByText(acme.name, { exact: true }).count()).toBe(0);
    expect(await connection(1).getByText(globex.name, { exact: true }).isVisible()).toBe(true);
    expect(await organisationsOf(a.grant_id)).toEqual([globex]);
    const stillA = await refresh(stack, tenant, a.refresh_token);
    expect(stillA.status).toBe(200);

    // the second connection: the others keep working
    await press(page, connection(2).getByRole('button', { name: 'Disconnect this connection' }));
    expect(await page.getByRole('status').textContent()).toBe(`The connection to ${name} was disconnected.`);
    expect(await app.getByRole('region', { name: /^Connection / }).count()).toBe(2);
    expect((await refresh(stack, tenant, b.refresh_token)).body.error).toBe('invalid_grant');
    expect(await organisationsOf(c.grant_id)).toEqual([initech]);

    // the app: every grant of it, for this user
    await press(page, page.getByRole('button', { name: `Disconnect ${name}`, exact: true }));
    expect(await page.getByRole('status').textContent()).toBe(`${name} was disconnected.`);
    expect(await page.getByRole('region', { name }).count()).toBe(0);
    expect(await page.getByText('No app is connected to your account.').isVisible()).toBe(true);
    const refreshA = await refresh(stack, tenant, (stillA.body as { refresh_token: string }).refresh_token);
    expect(refreshA.body.error).toBe('invalid_grant');
    expect((await refresh(stack, tenant, c.refresh_token)).body.error).toBe('invalid_grant');
    expect(await organisationsOf(c.grant_id)).toBe(404);
    await context.close();
  });
});
