import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { parsePublicKeys } from '@grantline/keys';
import { CompactEncrypt, compactDecrypt, decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Agent, authorizationRequest, createTenant, pkce, redeem, runFlow, type Tenant } from './flow.ts';
import { KEYS, type Stack, startStack } from './stack.ts';

const TYP = {
  session: 'grantline-session+jwt',
  consent: 'grantline-consent+jwt',
  verdict: 'grantline-verdict+jwt',
  code: 'grantline-code+jwt',
} as const;

const jti = () => randomBytes(12).toString('base64url');
const key = (jwk: JsonWebKey) => createPrivateKey({ key: jwk, format: 'jwk' });
const freshKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

/** Every private key an attacker finds in a service's configuration: JWKs, JWK sets and PEM blocks. */
const privateKeysIn = (env: Record<string, string>): KeyObject[] =>
  Object.values(env).flatMap((value) => {
    try {
      const parsed = JSON.parse(value) as { keys?: JsonWebKey[] } & JsonWebKey;
      return (parsed.keys ?? [parsed]).filter((k) => k.d).map(key);
    } catch {
      return [...value.matchAll(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g)].map((m) =>
        createPrivateKey(m[0]),
      );
    }
  });

/** What a forger would try with a key: ES256 with an EC key, HS256 with anything else. */
type Forger = KeyObject | Uint8Array;
const forgersIn = (env: Record<string, string>): Forger[] => [
  ...privateKeysIn(env),
  ...Object.values(env)
    .filter((v) => v.length > 0)
    .map((v) => new TextEncoder().encode(v)),
];

/** The `kid` the services would look a key up by (its RFC 7638 thumbprint), as a forger can compute it. */
const kidOf = (privateKey: KeyObject) =>
  parsePublicKeys(JSON.stringify(createPublicKey(privateKey).export({ format: 'jwk' })), 'sig')[0]!.kid;

const sign = (forger: Forger, typ: string, claims: object) =>
  new SignJWT({ ...claims })
    .setProtectedHeader(
      forger instanceof Uint8Array ? { alg: 'HS256', typ } : { alg: 'ES256', typ, kid: kidOf(forger) },
    )
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(forger);

const signAs = (jwk: JsonWebKey, typ: string, claims: object) => sign(key(jwk), typ, claims);

/**
 * Finding 5: each hand-off has its own key, and each service holds only what its role needs, so no
 * service can forge what another signs. Forgeries are tried with everything in a service's
 * configuration, as someone who took over that service would; each test also shows that the
 * genuine key is accepted, so a refusal is the key's doing.
 */
describe('keys by purpose', () => {
  let stack: Stack;
  let tenant: Tenant;
  const session = () => ({
    sid: randomBytes(16).toString('base64url'),
    sub: tenant.user.id,
    auth_time: Math.floor(Date.now() / 1000),
  });

  /** Whether the authorization service takes this session cookie as signed in (consent next, not sign-in). */
  const signedIn = async (cookie: string) => {
    const agent = new Agent();
    agent.cookies.set('grantline_session', cookie);
    const res = await agent.request(authorizationRequest(stack, tenant));
    expect(res.status).toBe(303);
    return !new URL(res.location!).pathname.startsWith('/login');
  };

  /** Whether the consent service shows its page for this challenge and session cookie. */
  const consentShown = async (challenge: string, cookie: string) => {
    const agent = new Agent();
    agent.cookies.set('grantline_session', cookie);
    const res = await agent.request(`${stack.consentUrl}/consent?consent_challenge=${challenge}`);
    return res.status === 200;
  };

  /** Whether the authorization service turns this verdict into a code for the client. */
  const verdictAccepted = async (verdict: string, cookie: string) => {
    const agent = new Agent();
    agent.cookies.set('grantline_session', cookie);
    const res = await agent.request(`${stack.issuer}/oauth2/authorize/complete?consent_verdict=${verdict}`);
    return res.status === 303 && new URL(res.location!).searchParams.has('code');
  };

  const flowRequest = () => ({
    clientId: tenant.client.client_id,
    redirectUri: tenant.client.redirect_uri,
    redirectUriGiven: true,
    scopes: ['invoices.read'],
    state: 'xyz',
    codeChallenge: pkce().challenge,
    resources: [],
    prompt: [],
  });

  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    tenant = await createTenant(stack);
  }, 120_000);
  afterAll(() => stack?.stop());

  it('finding 5: nothing in the token service’s configuration can sign a session, a challenge or a verdict', async () => {
    const forgers = forgersIn(stack.serviceEnv.token);
    // the token service holds a private key (it opens codes): it must not be one that signs statements
    expect(privateKeysIn(stack.serviceEnv.token).length).toBeGreaterThan(0);
    const genuine = await signAs(KEYS.keys.session, TYP.session, session());
    expect(await signedIn(genuine)).toBe(true);
    for (const forger of forgers) {
      const s = session();
      const forgedSession = await sign(forger, TYP.session, s);
      expect(await signedIn(forgedSession)).toBe(false);
      const challenge = await sign(forger, TYP.consent, { ...s, req: flowRequest(), jti: jti() });
      expect(await consentShown(challenge, forgedSession)).toBe(false);
      const verdict = await sign(forger, TYP.verdict, {
        ...s,
        req: flowRequest(),
        jti: jti(),
        grant_id: 'g',
        scopes: [],
        organisations: [],
      });
      expect(await verdictAccepted(verdict, await signAs(KEYS.keys.session, TYP.session, s))).toBe(false);
    }
  });

  it('finding 5: the consent service can check a session but cannot make one, nor a challenge', async () => {
    const s = session();
    const cookie = await signAs(KEYS.keys.session, TYP.session, s);
    const genuineChallenge = await signAs(KEYS.keys.session, TYP.consent, {
      ...s,
      req: flowRequest(),
      jti: jti(),
    });
    expect(await consentShown(genuineChallenge, cookie)).toBe(true);
    expect(privateKeysIn(stack.serviceEnv.consent).length).toBeGreaterThan(0);
    for (const forger of forgersIn(stack.serviceEnv.consent)) {
      const forged = await sign(forger, TYP.session, s);
      expect(await signedIn(forged)).toBe(false);
      const challenge = await sign(forger, TYP.consent, { ...s, req: flowRequest(), jti: jti() });
      expect(await consentShown(challenge, cookie)).toBe(false);
      expect(await consentShown(genuineChallenge, forged)).toBe(false);
    }
  });

  it('finding 5: a session or verdict signed with a key the service does not trust is refused', async () => {
    const s = session();
    const cookie = await signAs(KEYS.keys.session, TYP.session, s);
    // each verdict is single-use (finding 13): a fresh jti, so that only the key decides
    const verdict = () => ({
      ...s,
      req: flowRequest(),
      jti: jti(),
      grant_id: 'g',
      scopes: ['invoices.read'],
      organisations: [],
    });
    // a stranger's key, and each genuine key used for another purpose than its own
    for (const jwk of [freshKey().export({ format: 'jwk' }), KEYS.keys.session, KEYS.keys.codeSigning]) {
      expect(await verdictAccepted(await signAs(jwk, TYP.verdict, verdict()), cookie)).toBe(false);
    }
    expect(await verdictAccepted(await signAs(KEYS.keys.verdict, TYP.verdict, verdict()), cookie)).toBe(true);
    for (const jwk of [freshKey().export({ format: 'jwk' }), KEYS.keys.verdict, KEYS.keys.codeSigning]) {
      expect(await signedIn(await signAs(jwk, TYP.session, session()))).toBe(false);
    }
  });

  it('finding 5: a code the authorization service did not sign is refused, though sealed to the token service', async () => {
    const flow = await runFlow(stack, tenant);
    expect(flow.code).toBeTruthy();
    // what a genuine code says, opened as only the token service could
    const inner = new TextDecoder().decode(
      (await compactDecrypt(flow.code!, key(KEYS.keys.codeEncryption))).plaintext,
    );
    const claims = decodeJwt(inner);
    const [tokenKey] = parsePublicKeys(stack.serviceEnv.authorization.GRANTLINE_CODE_ENCRYPTION_KEY!, 'enc');
    const sealed = (plaintext: string) =>
      new CompactEncrypt(new TextEncoder().encode(plaintext))
        .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: tokenKey!.kid, cty: 'JWT' })
        .encrypt(tokenKey!.publicKey);
    const fresh = () => ({ ...claims, jti: randomBytes(18).toString('base64url') });
    const forged = [
      await sealed(await signAs(freshKey().export({ format: 'jwk' }), TYP.code, fresh())),
      await sealed(await signAs(KEYS.keys.session, TYP.code, fresh())),
      await sealed(await signAs(KEYS.keys.verdict, TYP.code, fresh())),
      // as codes were before: the claims themselves, sealed but signed by no one
      await sealed(JSON.stringify({ typ: 'code', ...fresh() })),
    ];
    for (const code of forged) {
      const res = await redeem(stack, tenant, code, flow.verifier);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    }
    const genuine = await sealed(await signAs(KEYS.keys.codeSigning, TYP.code, fresh()));
    expect((await redeem(stack, tenant, genuine, flow.verifier)).status).toBe(200);
  });
});
