// The peer of `pnpm bench:flow`: node-oidc-provider v9 with one confidential client (authorization
// code with PKCE, refresh tokens rotated on every use, JWT access tokens), run as its own process,
// and a scripted pass through its dev sign-in and consent pages that yields a refresh token.
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { Agent, pkce } from '../e2e/flow.ts';

export const redirectUri = 'https://app.example/cb';
export const scopes = ['invoices.read', 'invoices.write'];
export const audience = 'https://api.example.com';
export const isJwt = (token: unknown) => typeof token === 'string' && token.split('.').length === 3;

/** The peer: node-oidc-provider v9, one confidential client, code + refresh_token, dev interactions. */
export const runPeer = async (port: number) => {
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: process.env.CLIENT_ID!,
        client_secret: process.env.CLIENT_SECRET!,
        grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: [redirectUri],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256', // its only key is ES256
        scope: scopes.join(' '),
      },
    ],
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'peer-1', alg: 'ES256', use: 'sig' }] },
    scopes,
    ttl: {
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 28_800,
      Grant: 30 * 86_400,
      RefreshToken: 30 * 86_400,
    },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
    pkce: { required: () => true },
    issueRefreshToken: () => true,
    rotateRefreshToken: true, // Grantline rotates on every use
    features: {
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: scopes.join(' '),
          audience,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  provider.listen(port, '127.0.0.1', () => console.log('ready'));
};

/** One authorization code flow through the peer's dev pages; returns its refresh token. */
export const peerRefreshToken = async (peerUrl: string, clientId: string, authorization: string) => {
  const agent = new Agent();
  const { verifier, challenge } = pkce();
  const url = new URL(`${peerUrl}/auth`);
  for (const [k, v] of Object.entries({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: scopes.join(' '),
    state: randomBytes(8).toString('hex'),
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }))
    url.searchParams.set(k, v);
  let step = await agent.request(url.href);
  const action = (html: string) => new URL(/<form[^>]* action="([^"]+)"/.exec(html)![1]!, peerUrl).href;
  for (let hops = 0; hops < 12; hops++) {
    if (step.status === 200 && step.text.includes('name="prompt" value="login"'))
      step = await agent.request(action(step.text), {
        form: { prompt: 'login', login: 'ada', password: 'any' },
      });
    else if (step.status === 200 && step.text.includes('name="prompt" value="consent"'))
      step = await agent.request(action(step.text), { form: { prompt: 'consent' } });
    else if (
      step.status >= 301 &&
      step.status <= 303 &&
      step.location &&
      !step.location.startsWith(redirectUri)
    )
      step = await agent.request(step.location);
    else break;
  }
  const code = step.location ? new URL(step.location).searchParams.get('code') : null;
  if (!code) throw new Error(`peer flow ended at ${step.status} ${step.location ?? step.text.slice(0, 300)}`);
  const res = await fetch(`${peerUrl}/token`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
    }).toString(),
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200 || !isJwt(body.access_token) || !body.refresh_token)
    throw new Error(`peer code exchange: ${res.status} ${JSON.stringify(body)}`);
  return body.refresh_token as string;
};
