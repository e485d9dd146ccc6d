import { createHash, randomBytes } from 'node:crypto';
import { eventually } from '@grantline/testing';
import { basic, type Stack, tokenRequest } from './stack.ts';

/**
 * A scripted user agent for the authorization code flow: a cookie jar (per host, ports ignored, as
 * browsers do), manual redirects, and the few form fields the pages carry. Tests and `bench:flow`
 * drive the real pages with it; the Playwright test drives them with Chromium.
 */
export class Agent {
  readonly cookies = new Map<string, string>();

  async request(
    url: string,
    init: {
      method?: string;
      form?: Record<string, string | string[]>;
      headers?: Record<string, string>;
    } = {},
  ) {
    const headers: Record<string, string> = { ...init.headers };
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: string | undefined;
    if (init.form) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(init.form)) for (const x of [v].flat()) params.append(k, x);
      body = params.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(url, {
      method: init.method ?? (body ? 'POST' : 'GET'),
      headers,
      body,
      redirect: 'manual',
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await res.text();
    const location = res.headers.get('location');
    return {
      status: res.status,
      headers: res.headers,
      text,
      location: location ? new URL(location, url).href : undefined,
    };
  }
}

export const hidden = (html: string, name: string): string => {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no ${name} in page: ${html.slice(0, 300)}`);
  return m[1]!
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
};

export const pkce = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

export interface Tenant {
  organisations: { id: string; name: string }[];
  user: { id: string; username: string; password: string };
  client: { client_id: string; client_secret?: string; redirect_uri: string };
  scopes: string[];
}

/**
 * Three organisations, a user in all of them, two scopes, and a client; resolves when every
 * service has projected them.
 */
export const createTenant = async (
  stack: Stack,
  client: Record<string, unknown> = {},
  /** the user's organisations, named with a tag unique to the tenant (default: three) */
  organisationNames: (tag: string) => string[] = (tag) => [`Acme ${tag}`, `Globex ${tag}`, `Initech ${tag}`],
): Promise<Tenant> => {
  const tag = randomBytes(4).toString('hex');
  const organisations = [];
  for (const name of organisationNames(tag)) {
    const res = await stack.admin('/organisations', { name });
    organisations.push({ id: ((await res.json()) as { id: string }).id, name });
  }
  const user = { username: `ada.${tag}`, password: `correct horse ${tag}` };
  const created = await stack.admin('/users', { ...user, organisations: organisations.map((o) => o.id) });
  const { id } = (await created.json()) as { id: string };
  const scopes = ['invoices.read', 'invoices.write'];
  await stack.defineScopes({
    'invoices.read': 'Read your invoices',
    'invoices.write': 'Create and edit invoices',
  });
  const redirectUri = 'https://app.example/cb';
  const registered = await stack.register({
    client_name: `Ledger App ${tag}`,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: scopes.join(' '),
    ...client,
  });
  await eventually(
    async () => {
      const q = await stack.db.pool.query(
        `SELECT (SELECT count(*) FROM authz.users WHERE user_id = $1) + (SELECT count(*) FROM consent.users WHERE user_id = $1)
              + (SELECT count(*) FROM authz.clients WHERE client_id = $2) + (SELECT count(*) FROM consent.clients WHERE client_id = $2)
              + (SELECT count(*) FROM token.users WHERE user_id = $1) AS n`,
        [id, registered.client_id],
      );
      return Number(q.rows[0].n) === 5 ? true : undefined;
    },
    { what: 'every service to know the user and the client' },
  );
  return {
    organisations,
    user: { id, ...user },
    client: {
      ...registered,
      redirect_uri: (client.redirect_uris as string[] | undefined)?.[0] ?? redirectUri,
    },
    scopes,
  };
};

export const authorizeUrl = (stack: Stack, params: Record<string, string | undefined>) => {
  const url = new URL(`${stack.issuer}/oauth2/authorize`);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.href;
};

const { challenge: FIXED_CHALLENGE } = pkce();

/** A valid authorization request for the tenant's client (PKCE S256, state `xyz`); override any parameter. */
export const authorizationRequest = (
  stack: Stack,
  tenant: Tenant,
  overrides: Record<string, string | undefined> = {},
) =>
  authorizeUrl(stack, {
    response_type: 'code',
    client_id: tenant.client.client_id,
    redirect_uri: tenant.client.redirect_uri,
    scope: 'invoices.read',
    state: 'xyz',
    code_challenge: FIXED_CHALLENGE,
    code_challenge_method: 'S256',
    ...overrides,
  });

/** Posts the sign-in form of `page` (a page carrying a login_challenge) with these credentials. */
export const submitLogin = (
  stack: Stack,
  agent: Agent,
  page: { text: string },
  credentials: { username: string; password: string },
) =>
  agent.request(`${stack.issuer}/login`, {
    form: {
      login_challenge: hidden(page.text, 'login_challenge'),
      csrf_token: hidden(page.text, 'csrf_token'),
      username: credentials.username,
      password: credentials.password,
    },
  });

/** A new flow's sign-in page, in `agent`: the authorization request, then its redirect to /login. */
export const loginPage = async (agent: Agent, url: string) =>
  agent.request((await agent.request(url)).location!);

/** Follows an authorization request through sign-in to the consent page and returns that page. */
export const reachConsent = async (stack: Stack, tenant: Tenant, agent: Agent, url: string) => {
  let step = await agent.request(url);
  for (let hops = 0; hops < 5 && !step.text.includes('name="consent_challenge"'); hops++)
    step = step.text.includes('name="login_challenge"')
      ? await submitLogin(stack, agent, step, tenant.user)
      : await agent.request(step.location!);
  return step;
};

export interface FlowOptions {
  /** extra or overriding authorization request parameters */
  params?: Record<string, string | undefined>;
  /** organisation ids to tick (default: the first two) */
  organisations?: string[];
  decision?: 'allow' | 'deny';
  agent?: Agent;
}

/** Sign-in (if needed) and consent (if shown) through the real pages; returns the final redirect. */
export const runFlow = async (stack: Stack, tenant: Tenant, options: FlowOptions = {}) => {
  const agent = options.agent ?? new Agent();
  const { verifier, challenge } = pkce();
  const state = randomBytes(8).toString('hex');
  let step = await agent.request(
    authorizeUrl(stack, {
      response_type: 'code',
      client_id: tenant.client.client_id,
      redirect_uri: tenant.client.redirect_uri,
      scope: tenant.scopes.join(' '),
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...options.params,
    }),
  );
  let consentShown = false;
  for (let hops = 0; hops < 10; hops++) {
    if (step.status === 200 && step.text.includes('name="login_challenge"')) {
      step = await submitLogin(stack, agent, step, tenant.user);
    } else if (step.status === 200 && step.text.includes('name="consent_challenge"')) {
      consentShown = true;
      step = await agent.request(`${stack.consentUrl}/consent`, {
        form: {
          consent_challenge: hidden(step.text, 'consent_challenge'),
          csrf_token: hidden(step.text, 'csrf_token'),
          organisation: options.organisations ?? tenant.organisations.slice(0, 2).map((o) => o.id),
          decision: options.decision ?? 'allow',
        },
      });
    } else if (
      step.status === 303 &&
      step.location &&
      !step.location.startsWith(tenant.client.redirect_uri)
    ) {
      step = await agent.request(step.location);
    } else break;
  }
  const location = step.location ? new URL(step.location) : undefined;
  return {
    agent,
    step,
    location,
    verifier,
    state,
    consentShown,
    code: location?.searchParams.get('code') ?? undefined,
  };
};

/** How the tenant's client authenticates: Basic for a confidential client, its client_id for a public one. */
const clientAuth = (tenant: Tenant): { form: Record<string, string>; headers: Record<string, string> } =>
  tenant.client.client_secret
    ? { form: {}, headers: { authorization: basic(tenant.client.client_id, tenant.client.client_secret) } }
    : { form: { client_id: tenant.client.client_id }, headers: {} };

/** The client's side: redeem a code at the token endpoint. */
export const redeem = (
  stack: Stack,
  tenant: Tenant,
  code: string,
  verifier: string,
  extra: Record<string, string> = {},
) =>
  tokenRequest(
    stack,
    {
      grant_type: 'authorization_code',
      code,
      redirect_uri: tenant.client.redirect_uri,
      code_verifier: verifier,
      ...clientAuth(tenant).form,
      ...extra,
    },
    clientAuth(tenant).headers,
  );

export const refresh = (
  stack: Stack,
  tenant: Tenant,
  refreshToken: string,
  extra: Record<string, string> = {},
) =>
  tokenRequest(
    stack,
    { grant_type: 'refresh_token', refresh_token: refreshToken, ...clientAuth(tenant).form, ...extra },
    clientAuth(tenant).headers,
  );
