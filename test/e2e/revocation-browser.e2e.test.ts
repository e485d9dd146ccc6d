import { loadavg } from 'node:os';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type AppTokens, browserUser } from './browser-account.ts';
import { chromiumPath, launchChromium } from './chromium.ts';
import { createTenant, refresh, type Tenant } from './flow.ts';
import { introspector } from './introspection-fixture.ts';
import { type InvoicesApi, invoices, rejectedBy, startInvoicesApis } from './invoices-api.ts';
import { type Stack, startStack } from './stack.ts';

const executablePath = chromiumPath();
if (!executablePath)
  console.warn(
    'revocation-browser.e2e: SKIPPED, no Chromium found (set CHROMIUM_PATH, or install /usr/bin/chromium)',
  );

type Org = Tenant['organisations'][number];

/**
 * How long after the disconnect's answer (the 303 to the confirmation) a resource server or
 * introspection may still honour what was disconnected: the user has been told it is done.
 */
const BUDGET_MS = 1_000;
/**
 * How long after the request itself: security.md item 35's T (5 s). The request's own handling is
 * counted here, which on this shared two-core machine under heavy load took up to 1.1 s alone;
 * `pnpm bench:revocation` measures request-to-rejection under controlled load.
 */
const REQUEST_BUDGET_MS = 5_000;

/** A watch: resolves with the time (`Date.now()`) it saw what it waits for; fails after `deadline`. */
type Watch = (deadline: number) => Promise<number>;

/**
 * Issue 9's first Must-show, end to end: a user in Chromium connects an app and disconnects it
 * (an organisation, a connection, the whole app) with the buttons of /account/connections, on the
 * distributed stack; the example invoices API, running on the SDK once subscribed to
 * grantline.revocations.v1 on Kafka and once following the HTTP revocation stream, stops honouring
 * exactly what was disconnected within a second of the page confirming it (and within security.md
 * item 35's T of the request), and RFC 7662 introspection, asked by that API's resource-server
 * client, agrees.
 */
describe.skipIf(!executablePath)(
  'issue 9 must-show: disconnects in the browser reach resource servers',
  () => {
    let stack: Stack;
    let apis: Awaited<ReturnType<typeof startInvoicesApis>>;
    let both: InvoicesApi[];
    let browser: Browser;

    beforeAll(async () => {
      stack = await startStack(inject('infra'));
      apis = await startInvoicesApis(stack, inject('infra'));
      both = [apis.kafka, apis.stream];
      browser = await launchChromium(executablePath!);
    }, 120_000);
    afterAll(async () => {
      await browser?.close();
      await apis?.stop();
      await stack?.stop();
    });

    /** A user and an app whose tokens are for both instances of the API, and the user's browser. */
    const setUp = async () => {
      const tenant = await createTenant(stack, { resources: both.map((a) => a.url) });
      const user = browserUser(stack, tenant);
      const context = await browser.newContext();
      const page = await user.newPage(context);
      return { tenant, user, context, page };
    };

    /** The signed-in user's account page (the session from connecting, so no sign-in page). */
    const openAccount = async (page: Page) => {
      const res = await page.goto(`${stack.issuer}/account/connections`);
      expect(res?.status()).toBe(200);
      expect(await page.title()).toBe('Connected apps');
      const app = page.getByRole('region', { name: /^Ledger App / });
      return { app, name: (await app.getByRole('heading', { level: 2 }).textContent())! };
    };

    /** Both instances of the API serve `token` in `organisation`. */
    const served = async (token: string, organisation: Org) => {
      for (const at of both) {
        const res = await invoices(at, token, organisation.id);
        expect(res.status, `${at.url} for ${organisation.name}`).toBe(200);
        expect(await res.json()).toMatchObject({ organisation: organisation.id });
      }
    };

    /** Both instances answer 401 invalid_token for `token` in each of `organisations`, now. */
    const refusedEverywhere = async (token: string, organisations: Org[]) => {
      for (const organisation of organisations)
        for (const at of both) {
          const res = await invoices(at, token, organisation.id);
          expect(res.status, `${at.url} for ${organisation.name}`).toBe(401);
          expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
        }
    };

    /** POST /oauth2/introspect as the API's own resource-server client. */
    const introspect = async (token: string) =>
      (
        await introspector(() => stack)(
          { client_id: apis.kafka.clientId, client_secret: apis.kafka.clientSecret },
          { token },
        )
      ).body as { active: boolean; organisations?: string[] };

    /** Both instances answer 401 invalid_token for `token` in `organisation` (serving until then). */
    const rejected = (token: string, organisation: Org): Watch[] =>
      both.map((at) => (deadline) => rejectedBy(at, token, organisation.id, deadline));

    /** Introspection of `token`, polled every 20 ms, comes to say what `agrees` expects. */
    const introspection =
      (token: string, agrees: (body: Awaited<ReturnType<typeof introspect>>) => boolean): Watch =>
      async (deadline) => {
        for (;;) {
          const body = await introspect(token);
          if (agrees(body)) return Date.now();
          if (Date.now() > deadline) throw new Error(`introspection still says ${JSON.stringify(body)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };

    /**
     * Presses a disconnect button with `watches` polling from the click. Each must see its effect
     * within the budgets of the moment Chromium sent the request and of its answer (Chromium's own
     * timestamps, so the browser's delay in dispatching the click is not counted). The slowest
     * effect, in ms from the request.
     */
    const pressWatching = async (
      press: (page: Page, button: Locator) => Promise<{ sentAt: number; answeredAt: number }>,
      page: Page,
      button: Locator,
      watches: Watch[],
    ) => {
      const deadline = Date.now() + REQUEST_BUDGET_MS;
      const [{ sentAt, answeredAt }, ...seenAt] = await Promise.all([
        press(page, button),
        ...watches.map((w) => w(deadline)),
      ]);
      // a miss names the load: a CPU-starved machine (two cores, shared) reads apart from a regression
      const load = `load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`;
      for (const t of seenAt) {
        expect(t - answeredAt, `ms from the answer to the effect (${load})`).toBeLessThan(BUDGET_MS);
        expect(t - sentAt, `ms from the request to the effect (${load})`).toBeLessThan(REQUEST_BUDGET_MS);
      }
      return {
        request: Math.round(Math.max(...seenAt) - sentAt),
        answer: Math.round(Math.max(...seenAt) - answeredAt),
      };
    };

    const refreshFails = async (tenant: Tenant, tokens: AppTokens) => {
      const res = await refresh(stack, tenant, tokens.refresh_token);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    };

    it('issue 9 must-show, item 35: connected to 2 of 3 organisations, "Disconnect <organisation>" rejects the old token there within 1 s of its confirmation and keeps the other, introspection agrees; "Disconnect <app>" rejects everything, introspects inactive, refresh fails with invalid_grant', async () => {
      const { tenant, user, context, page } = await setUp();
      const [acme, globex, initech] = tenant.organisations as [Org, Org, Org];

      // 1. the consent page: two of the user's three organisations ticked
      const tokens = await user.connect(page, [acme, globex]);
      await served(tokens.access_token, acme);
      await served(tokens.access_token, globex);
      const never = await invoices(apis.kafka, tokens.access_token, initech.id);
      expect(never.status).toBe(403);
      expect(never.headers.get('www-authenticate')).toMatch(/^Bearer error="insufficient_scope"/);
      expect(await introspect(tokens.access_token)).toMatchObject({
        active: true,
        organisations: expect.arrayContaining([acme.id, globex.id]),
      });

      // 2.-4. one organisation, with its button: a 303 back with a confirmation; within 1 s of it both APIs
      // reject the old token there, and introspection lists only the other organisation
      const { app, name } = await openAccount(page);
      const organisationMs = await pressWatching(
        user.press,
        page,
        app.getByRole('button', { name: `Disconnect ${acme.name}`, exact: true }),
        [
          ...rejected(tokens.access_token, acme),
          introspection(tokens.access_token, (b) => b.organisations?.length === 1),
        ],
      );
      expect(await page.getByRole('status').textContent()).toBe(
        `${acme.name} was disconnected from ${name}.`,
      );
      await served(tokens.access_token, globex);
      expect(await introspect(tokens.access_token)).toMatchObject({
        active: true,
        organisations: [globex.id],
      });

      // 5. the app: every organisation rejected, the token inactive, the refresh token refused
      const appMs = await pressWatching(
        user.press,
        page,
        page.getByRole('button', { name: `Disconnect ${name}`, exact: true }),
        [...rejected(tokens.access_token, globex), introspection(tokens.access_token, (b) => !b.active)],
      );
      expect(await page.getByRole('status').textContent()).toBe(`${name} was disconnected.`);
      await refusedEverywhere(tokens.access_token, [acme, globex, initech]);
      expect(await introspect(tokens.access_token)).toEqual({ active: false });
      await refreshFails(tenant, tokens);
      await context.close();
      console.log(
        `must-show, slowest effect in ms after the request / its answer: organisation ${JSON.stringify(organisationMs)}, app ${JSON.stringify(appMs)}`,
      );
    });

    it('issue 9 must-show, item 35: two use cases (grants) of one app in the same organisations, "Disconnect this connection" on one rejects its token within 1 s of its confirmation and leaves the other working at the API, active at introspection, and refreshable', async () => {
      const { tenant, user, context, page } = await setUp();
      const [acme, globex] = tenant.organisations as [Org, Org];

      // two separate authorizations of the same app, both in the same two organisations
      const first = await user.connect(page, [acme, globex]);
      const second = await user.connect(page, [acme, globex], { grant_management_action: 'create' });
      expect(second.grant_id).not.toBe(first.grant_id);
      for (const t of [first, second]) for (const o of [acme, globex]) await served(t.access_token, o);

      const { app, name } = await openAccount(page);
      const connections = app.getByRole('region', { name: /^Connection / });
      expect(await connections.count()).toBe(2);
      const grantMs = await pressWatching(
        user.press,
        page,
        user.connectionOf(page, first.grant_id).getByRole('button', { name: 'Disconnect this connection' }),
        [...rejected(first.access_token, acme), introspection(first.access_token, (b) => !b.active)],
      );
      expect(await page.getByRole('status').textContent()).toBe(
        `The connection to ${name} was disconnected.`,
      );
      expect(await connections.count()).toBe(1);
      expect(await user.connectionOf(page, second.grant_id).count()).toBe(1);
      await refusedEverywhere(first.access_token, [acme, globex]);
      expect(await introspect(first.access_token)).toEqual({ active: false });
      await refreshFails(tenant, first);

      // the other use case of the same app, in the same organisations: untouched
      for (const o of [acme, globex]) await served(second.access_token, o);
      expect(await introspect(second.access_token)).toMatchObject({
        active: true,
        organisations: expect.arrayContaining([acme.id, globex.id]),
      });
      const refreshed = await refresh(stack, tenant, second.refresh_token);
      expect(refreshed.status).toBe(200);
      const renewed = refreshed.body as unknown as AppTokens;
      await served(renewed.access_token, acme);
      expect(await introspect(renewed.access_token)).toMatchObject({ active: true });
      await context.close();
      console.log(
        `must-show, slowest effect in ms after the request / its answer: connection ${JSON.stringify(grantMs)}`,
      );
    });
  },
);
