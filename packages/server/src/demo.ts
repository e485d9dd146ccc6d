import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cookiesOf, escapeHtml, pageErrorBoundary, pageHeaders, renderPage } from '@grantline/oauth';
import { StartupError } from '@grantline/service-kit';
import express from 'express';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oauth from 'oauth4webapi';

/** What the first start created for the demo, kept in `<GRANTLINE_DATA_DIR>/demo.json` (mode 0600). */
export interface DemoSeed {
  user: { id: string; username: string; password: string };
  organisations: { id: string; name: string }[];
  scopes: Record<string, string>;
  /** the demo page's client: confidential (client_secret_basic), PKCE */
  webClient: { client_id: string; client_secret: string; redirect_uri: string };
  /** a public client (PKCE, no secret) for a native or command-line app on this machine */
  publicClient: { client_id: string; redirect_uri: string };
}

const SCOPES: Record<string, string> = {
  'invoices.read': 'Read the invoices of the organisations you connect',
  'invoices.write': 'Create and change invoices in the organisations you connect',
  'contacts.read': 'Read the contacts of the organisations you connect',
};
const ORGANISATIONS = ['Acme Corporation', 'Globex', 'Initech'];

/**
 * Seeds the demo once, through the same admin API and RFC 7591 registration an operator uses: three
 * organisations, a user in all three with a generated password, scopes with descriptions, a
 * confidential client for the demo page and a public client. Later starts read what it wrote.
 */
export const seedDemo = async (options: {
  file: string;
  issuer: string;
  /** where this process listens (the issuer may name a proxy in front of it) */
  publicUrl: string;
  managementUrl: string;
  adminToken: string;
}): Promise<DemoSeed> => {
  if (existsSync(options.file)) return JSON.parse(readFileSync(options.file, 'utf8')) as DemoSeed;
  const call = async <T>(
    url: string,
    body: unknown,
    token = options.adminToken,
    expected = 201,
  ): Promise<T> => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status !== expected && !(res.status === 409 && expected === 201 && url.endsWith('/scopes')))
      throw new StartupError(
        `seeding the demo failed at ${new URL(url).pathname}: ${res.status} ${await res.text()}. Remove GRANTLINE_DATA_DIR to start over, or set GRANTLINE_DEMO=false.`,
      );
    return (await res.json().catch(() => ({}))) as T;
  };
  const admin = (path: string, body: unknown) =>
    call<Record<string, string>>(`${options.managementUrl}/admin${path}`, body);
  for (const [name, description] of Object.entries(SCOPES)) await admin('/scopes', { name, description });
  const organisations = [];
  for (const name of ORGANISATIONS)
    organisations.push({ id: (await admin('/organisations', { name })).id!, name });
  const password = randomBytes(9).toString('base64url');
  const user = await admin('/users', {
    username: 'demo',
    password,
    organisations: organisations.map((o) => o.id),
  });
  const { initial_access_token: iat } = await admin('/initial-access-tokens', { description: 'demo seed' });
  const register = (metadata: Record<string, unknown>) =>
    call<Record<string, string>>(`${options.publicUrl}/oauth2/register`, metadata, iat);
  const scope = Object.keys(SCOPES).join(' ');
  const redirect = `${options.issuer}/demo/callback`;
  const web = await register({
    client_name: 'Grantline demo (web)',
    redirect_uris: [redirect],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope,
  });
  const publicRedirect = 'http://127.0.0.1:8765/callback';
  const cli = await register({
    client_name: 'Grantline demo (command line)',
    redirect_uris: [publicRedirect],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    scope,
  });
  const seed: DemoSeed = {
    user: { id: user.id ?? user.user_id ?? '', username: 'demo', password },
    organisations,
    scopes: SCOPES,
    webClient: { client_id: web.client_id!, client_secret: web.client_secret!, redirect_uri: redirect },
    publicClient: { client_id: cli.client_id!, redirect_uri: publicRedirect },
  };
  writeFileSync(options.file, JSON.stringify(seed, null, 2), { mode: 0o600 });
  return seed;
};

const pretty = (value: unknown) => `<pre>${escapeHtml(JSON.stringify(value, null, 2))}</pre>`;

/**
 * `/demo`: a client app in the same process, like Hydra's `perform authorization-code`. It starts an
 * authorization request with PKCE (S256) and state, receives the callback, checks it (state, `iss`),
 * redeems the code with its secret, and shows the token response and the decoded access token; a
 * refresh button uses the refresh token. Built on oauth4webapi, as a real app would be. A demo
 * session lives in this process's memory, keyed by a cookie.
 */
export const demoRoutes = (options: { issuer: string; publicUrl: string; seed: DemoSeed }) => {
  const { issuer, seed } = options;
  const { webClient } = seed;
  // the app talks to the server where this process listens, whatever origin the issuer names
  const insecure = {
    [oauth.allowInsecureRequests]: issuer.startsWith('http:') || options.publicUrl.startsWith('http:'),
    [oauth.customFetch]: (url: string, init: RequestInit) =>
      fetch(url.startsWith(issuer) ? options.publicUrl + url.slice(issuer.length) : url, init),
  };
  const issuerUrl = new URL(issuer);
  let metadata: Promise<oauth.AuthorizationServer> | undefined;
  const as = () => {
    metadata ??= oauth
      .discoveryRequest(issuerUrl, { algorithm: 'oauth2', ...insecure })
      .then((res) => oauth.processDiscoveryResponse(issuerUrl, res))
      .catch((error: unknown) => {
        metadata = undefined;
        throw error;
      });
    return metadata;
  };
  const client: oauth.Client = { client_id: webClient.client_id };
  const clientAuth = oauth.ClientSecretBasic(webClient.client_secret);
  interface Session {
    state?: string;
    verifier?: string;
    csrf: string;
    tokens?: oauth.TokenEndpointResponse;
    error?: string;
  }
  const sessions = new Map<string, Session>();
  const COOKIE = 'grantline_demo';
  const secure = issuer.startsWith('https:');
  const sessionOf = (req: express.Request, res: express.Response): Session => {
    const id = cookiesOf(req)[COOKIE];
    const found = id ? sessions.get(id) : undefined;
    if (found) return found;
    const session: Session = { csrf: randomBytes(24).toString('base64url') };
    issue(res, session);
    return session;
  };
  /** a new id for the session (a fixed one planted in the browser beforehand sees nothing of it) */
  const issue = (res: express.Response, session: Session, previous?: string) => {
    if (previous) sessions.delete(previous);
    const id = randomBytes(24).toString('base64url');
    if (sessions.size > 1_000) sessions.delete(sessions.keys().next().value!);
    sessions.set(id, session);
    res.cookie(COOKIE, id, { httpOnly: true, sameSite: 'lax', secure, path: '/demo' });
  };

  const page = (session: Session) => {
    const orgs = seed.organisations.map((o) => escapeHtml(o.name)).join(', ');
    let result = '';
    if (session.error) result += `<h2>Error</h2>${pretty(session.error)}`;
    if (session.tokens) {
      const { access_token } = session.tokens;
      result += `<h2>Token response</h2>${pretty(session.tokens)}
        <h2>Access token, decoded</h2><h3>Header</h3>${pretty(decodeProtectedHeader(access_token))}
        <h3>Claims</h3>${pretty(decodeJwt(access_token))}`;
      if (session.tokens.refresh_token)
        result += `<form method="post" action="/demo/refresh"><input type="hidden" name="csrf" value="${escapeHtml(session.csrf)}">
          <button type="submit">Refresh the tokens</button></form>`;
    }
    return renderPage(
      'Grantline demo app',
      `<h1>Grantline demo app</h1>
      <p>A client app (${escapeHtml(webClient.client_id)}) that asks you to connect it to your organisations.
      Sign in as <strong>${escapeHtml(seed.user.username)}</strong> with password <code>${escapeHtml(seed.user.password)}</code>
      (a member of ${orgs}).</p>
      <form method="get" action="/demo/start"><button type="submit">Connect the demo app</button></form>
      ${result}`,
    );
  };

  const app = express();
  app.disable('x-powered-by');
  app.use('/demo', pageHeaders);
  app.get('/demo', (req, res) => {
    res.type('html').send(page(sessionOf(req, res)));
  });
  app.get('/demo/start', async (req, res) => {
    const session = sessionOf(req, res);
    session.state = oauth.generateRandomState();
    session.verifier = oauth.generateRandomCodeVerifier();
    const authorize = new URL((await as()).authorization_endpoint!);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: webClient.client_id,
      redirect_uri: webClient.redirect_uri,
      scope: Object.keys(seed.scopes).join(' '),
      state: session.state,
      code_challenge: await oauth.calculatePKCECodeChallenge(session.verifier),
      code_challenge_method: 'S256',
    }).toString();
    res.redirect(303, authorize.href);
  });
  app.get('/demo/callback', async (req, res) => {
    const session = sessionOf(req, res);
    const { state, verifier } = session;
    session.state = session.verifier = undefined;
    session.tokens = undefined;
    session.error = undefined;
    try {
      if (!state || !verifier)
        throw new Error('no authorization request of this browser is pending: start again');
      const server = await as();
      const params = oauth.validateAuthResponse(server, client, new URL(req.originalUrl, issuer), state);
      session.tokens = await oauth.processAuthorizationCodeResponse(
        server,
        client,
        await oauth.authorizationCodeGrantRequest(
          server,
          client,
          clientAuth,
          params,
          webClient.redirect_uri,
          verifier,
          insecure,
        ),
      );
    } catch (error) {
      session.error = describe(error);
    }
    // the tokens now belong to this browser's session only: under an id nobody could have planted
    if (session.tokens) issue(res, session, cookiesOf(req)[COOKIE]);
    res.redirect(303, '/demo');
  });
  app.post('/demo/refresh', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    const session = sessionOf(req, res);
    const refresh = session.tokens?.refresh_token;
    if (req.body?.csrf !== session.csrf || !refresh) return void res.redirect(303, '/demo');
    try {
      const server = await as();
      session.tokens = await oauth.processRefreshTokenResponse(
        server,
        client,
        await oauth.refreshTokenGrantRequest(server, client, clientAuth, refresh, insecure),
      );
      session.error = undefined;
    } catch (error) {
      session.error = describe(error);
    }
    res.redirect(303, '/demo');
  });
  app.use('/demo', pageErrorBoundary);
  return app;
};

/** An OAuth error response as the server sent it, else the library's message. */
const describe = (error: unknown): string => {
  if (error instanceof oauth.ResponseBodyError) return `${error.error}: ${error.error_description ?? ''}`;
  if (error instanceof oauth.AuthorizationResponseError)
    return `${error.error}: ${error.error_description ?? ''}`;
  return (error as Error).message ?? String(error);
};
