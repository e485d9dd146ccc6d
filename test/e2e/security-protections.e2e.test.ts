import { createHash, randomUUID } from 'node:crypto';
import { type CryptoKey, decodeJwt, exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  Agent,
  authorizationRequest,
  createTenant,
  hidden,
  pkce,
  reachConsent,
  redeem,
  refresh,
  runFlow,
  type Tenant,
} from './flow.ts';
import { basic, type Stack, startStack, tokenRequest } from './stack.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

/**
 * Protections that existed without a test of their own (issue 7): each test fails if its check is
 * removed. Items are those of ../shared/research/security.md.
 */
describe('security checklist: protections that had no test of their own', () => {
  let stack: Stack;
  let tenant: Tenant;
  const clientAuth = (t: Tenant) => ({ authorization: basic(t.client.client_id, t.client.client_secret!) });
  const grants = (grantId: string, t: Tenant, method = 'GET') =>
    fetch(`${stack.consentUrl}/oauth2/grants/${grantId}`, { method, headers: clientAuth(t) });

  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    tenant = await createTenant(stack);
  }, 120_000);
  afterAll(() => stack?.stop());

  it('item 15: a code_verifier outside the RFC 7636 §4.1 syntax is refused even when its S256 matches', async () => {
    const agent = new Agent();
    const attempt = async (verifier: string) => {
      const flow = await runFlow(stack, tenant, { agent, params: { code_challenge: s256(verifier) } });
      return redeem(stack, tenant, flow.code!, verifier);
    };
    const letters = (n: number) => 'a'.repeat(n);
    for (const verifier of [
      letters(42), // too short
      letters(129), // too long
      `${letters(42)}+`, // not an unreserved character
      `${letters(42)}/`,
      `${letters(42)}=`,
      `${letters(42)} `,
      `${letters(42)}é`,
    ]) {
      const res = await attempt(verifier);
      expect(res.status, JSON.stringify(verifier)).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    }
    // the bounds themselves, and every unreserved character, are valid
    for (const verifier of [letters(43), letters(128), `AZaz09-._~${letters(33)}`])
      expect((await attempt(verifier)).status, verifier).toBe(200);
  });

  it('private_key_jwt: only allow-listed algorithms, and exp required and at most minutes ahead (RFC 7523 §3)', async () => {
    const es256 = await generateKeyPair('ES256', { extractable: true });
    const es512 = await generateKeyPair('ES512', { extractable: true });
    const jwk = async (key: CryptoKey, kid: string, alg: string): Promise<JWK> => ({
      ...(await exportJWK(key)),
      kid,
      alg,
    });
    const client = await stack.register({
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [await jwk(es256.publicKey, 'k1', 'ES256'), await jwk(es512.publicKey, 'k2', 'ES512')] },
      scope: 'invoices.read',
    });
    const now = Math.floor(Date.now() / 1000);
    const assertion = (
      options: {
        alg?: string;
        kid?: string;
        key?: CryptoKey | Uint8Array;
        claims?: Record<string, unknown>;
      } = {},
    ) =>
      new SignJWT({
        iss: client.client_id,
        sub: client.client_id,
        aud: stack.issuer,
        jti: randomUUID(),
        iat: now,
        exp: now + 60,
        ...options.claims,
      })
        .setProtectedHeader({ alg: options.alg ?? 'ES256', kid: options.kid ?? 'k1' })
        .sign(options.key ?? es256.privateKey);
    const present = (clientAssertion: string) =>
      tokenRequest(stack, {
        grant_type: 'client_credentials',
        client_assertion_type: JWT_BEARER,
        client_assertion: clientAssertion,
      });
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const refused: Record<string, string> = {
      'alg none': `${b64({ alg: 'none', kid: 'k1' })}.${b64({ iss: client.client_id, sub: client.client_id, aud: stack.issuer, jti: randomUUID(), exp: now + 60 })}.`,
      'HS256 keyed with the registered public key': await assertion({
        alg: 'HS256',
        key: new TextEncoder().encode(await exportSPKI(es256.publicKey)),
      }),
      // a registered key and a valid signature, but an algorithm off the allow-list
      'ES512 with a registered P-521 key': await assertion({
        alg: 'ES512',
        kid: 'k2',
        key: es512.privateKey,
      }),
      'exp an hour ahead': await assertion({ claims: { exp: now + 3600 } }),
      'exp two minutes past': await assertion({ claims: { iat: now - 180, exp: now - 120 } }),
      'no exp': await assertion({ claims: { exp: undefined } }),
      'no jti': await assertion({ claims: { jti: undefined } }),
    };
    for (const [what, bad] of Object.entries(refused)) {
      const res = await present(bad);
      expect(res.status, what).toBe(401);
      expect(res.body.error, what).toBe('invalid_client');
    }
    expect((await present(await assertion())).status).toBe(200);
  });

  it('consent: an organisation the user does not belong to, slipped into the form, is refused and reaches no token', async () => {
    const foreign = (await (
      await stack.admin('/organisations', { name: `Umbrella ${randomUUID()}` })
    ).json()) as {
      id: string;
    };
    const own = tenant.organisations[2]!.id;
    const agent = new Agent();
    const { verifier, challenge } = pkce();
    let page = await reachConsent(
      stack,
      tenant,
      agent,
      authorizationRequest(stack, tenant, {
        prompt: 'consent',
        grant_management_action: 'create',
        code_challenge: challenge,
      }),
    );
    expect(page.text).not.toContain(foreign.id);
    const submit = (organisation: string[]) =>
      agent.request(`${stack.consentUrl}/consent`, {
        form: {
          consent_challenge: hidden(page.text, 'consent_challenge'),
          csrf_token: hidden(page.text, 'csrf_token'),
          organisation,
          decision: 'allow',
        },
      });
    for (const organisation of [[foreign.id], [own, foreign.id], ['no-such-organisation']]) {
      const tampered = await submit(organisation);
      expect(tampered.status, organisation.join()).toBe(400);
      expect(tampered.location).toBeUndefined();
      page = tampered; // the form again, with the error
    }
    const allowed = await submit([own]);
    expect(allowed.status).toBe(303);
    const code = new URL((await agent.request(allowed.location!)).location!).searchParams.get('code')!;
    const tokens = await redeem(stack, tenant, code, verifier);
    expect(tokens.status).toBe(200);
    expect(decodeJwt(tokens.body.access_token as string).organisations).toEqual([own]);
  });

  it('Grant Management: client B can neither read nor revoke client A’s grant', async () => {
    const other = await createTenant(stack);
    const flow = await runFlow(stack, tenant, { params: { grant_management_action: 'create' } });
    const tokens = await redeem(stack, tenant, flow.code!, flow.verifier);
    const grantId = tokens.body.grant_id as string;
    for (const method of ['GET', 'DELETE']) {
      const res = await grants(grantId, other, method);
      expect(res.status, method).toBe(404);
      expect(((await res.json()) as { error: string }).error).toBe('invalid_grant_id');
    }
    // A's grant is untouched
    expect((await grants(grantId, tenant)).status).toBe(200);
    expect((await refresh(stack, tenant, tokens.body.refresh_token as string)).status).toBe(200);
    expect(decodeJwt(tokens.body.access_token as string).grant_id).toBe(grantId);
  });

  it('logout: a POST without the CSRF token, or with another session’s, is 403 and the session lives on', async () => {
    const victim = await runFlow(stack, tenant);
    const attacker = await runFlow(stack, tenant);
    const logoutToken = async (agent: Agent) =>
      hidden((await agent.request(`${stack.issuer}/logout`)).text, 'csrf_token');
    const signedIn = async (agent: Agent) =>
      (await runFlow(stack, tenant, { agent, params: { prompt: 'none' } })).code !== undefined;
    const post = (agent: Agent, form: Record<string, string>) =>
      agent.request(`${stack.issuer}/logout`, { method: 'POST', form });

    expect((await post(victim.agent, {})).status).toBe(403);
    expect((await post(victim.agent, { csrf_token: await logoutToken(attacker.agent) })).status).toBe(403);
    expect((await post(victim.agent, { csrf_token: 'x'.repeat(43) })).status).toBe(403);
    expect(await signedIn(victim.agent)).toBe(true);

    expect((await post(victim.agent, { csrf_token: await logoutToken(victim.agent) })).status).toBe(200);
    expect(await signedIn(victim.agent)).toBe(false);
    expect(await signedIn(attacker.agent)).toBe(true);
  });
});
