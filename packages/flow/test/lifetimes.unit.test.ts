import { manualClock } from '@grantline/clock';
import { generateKeyMaterial, parsePrivateKeys, parsePublicKeys, publicJwks } from '@grantline/keys';
import { describe, expect, it } from 'vitest';
import { type AuthorizationCode, FlowKeys, type FlowRequest, STATEMENT } from '../src/index.ts';

const { keys } = generateKeyMaterial();
const privateOf = (purpose: keyof typeof keys, use: 'sig' | 'enc') =>
  parsePrivateKeys(JSON.stringify(keys[purpose]), use);
const publicOf = (purpose: keyof typeof keys, use: 'sig' | 'enc') =>
  parsePublicKeys(JSON.stringify(publicJwks(privateOf(purpose, use))), use);

/** on a whole second, so that `exp` falls exactly `ttl` seconds on */
const T0 = Date.parse('2026-03-01T12:00:00Z');
/** the authorization, consent and token services' keys, all on one clock a test moves */
const services = () => {
  const clock = manualClock(T0);
  return {
    clock,
    authorization: new FlowKeys({
      signing: { session: privateOf('session', 'sig'), codeSigning: privateOf('codeSigning', 'sig') },
      verifying: { verdict: publicOf('verdict', 'sig') },
      codeEncryption: publicOf('codeEncryption', 'enc'),
      clock,
    }),
    consent: new FlowKeys({
      signing: { verdict: privateOf('verdict', 'sig') },
      verifying: { session: publicOf('session', 'sig') },
      clock,
    }),
    token: new FlowKeys({
      codeDecryption: privateOf('codeEncryption', 'enc'),
      verifying: { codeSigning: publicOf('codeSigning', 'sig') },
      clock,
    }),
  };
};

const req: FlowRequest = {
  clientId: 'c',
  redirectUri: 'https://app.example/cb',
  redirectUriGiven: true,
  scopes: ['a'],
  codeChallenge: 'x'.repeat(43),
  resources: [],
  prompt: [],
};
const session = { sid: 's1', sub: 'u1', auth_time: T0 / 1000 };
const code: AuthorizationCode = {
  jti: 'j',
  cid: 'c',
  ruri: req.redirectUri,
  rs: true,
  cc: req.codeChallenge,
  sub: 'u1',
  gid: 'g',
  scp: [],
  orgs: [],
  res: [],
  auth_time: T0 / 1000,
};

describe('statement lifetimes, on the injected clock', () => {
  it('stamps iat and exp from the clock, not the system time', async () => {
    const { authorization, consent } = services();
    const signed = await consent.verify(
      STATEMENT.session,
      await authorization.sign(STATEMENT.session, session, 28_800),
    );
    expect(signed).toMatchObject({ iat: T0 / 1000, exp: T0 / 1000 + 28_800 });
  });

  for (const [name, sign, verify, ttl] of [
    [
      'a login challenge (10 minutes)',
      (k) => k.authorization.sign(STATEMENT.login, { req, jti: 'l' }, 600),
      (k, jws) => k.authorization.verify(STATEMENT.login, jws),
      600,
    ],
    [
      'a consent challenge (10 minutes)',
      (k) => k.authorization.sign(STATEMENT.consent, { ...session, req, jti: 'c' }, 600),
      (k, jws) => k.consent.verify(STATEMENT.consent, jws),
      600,
    ],
    [
      'a session (SESSION_TTL_SECONDS)',
      (k) => k.authorization.sign(STATEMENT.session, session, 28_800),
      (k, jws) => k.consent.verify(STATEMENT.session, jws),
      28_800,
    ],
    [
      'a verdict (1 minute)',
      (k) => k.consent.sign(STATEMENT.verdict, { ...session, req, jti: 'v' }, 60),
      (k, jws) => k.authorization.verify(STATEMENT.verdict, jws),
      60,
    ],
  ] as [
    string,
    (k: ReturnType<typeof services>) => Promise<string>,
    (k: ReturnType<typeof services>, jws: string) => Promise<unknown>,
    number,
  ][])
    it(`${name} is accepted until its lifetime ends, and refused from then on`, async () => {
      const k = services();
      const jws = await sign(k);
      k.clock.advance(ttl * 1000 - 1);
      expect(await verify(k, jws)).toBeDefined();
      k.clock.advance(1);
      expect(await verify(k, jws)).toBeUndefined();
    });

  it('a statement from a signer whose clock runs ahead is accepted: only exp is checked (statements carry no nbf)', async () => {
    const k = services();
    k.clock.advance(5_000);
    const jws = await k.authorization.sign(STATEMENT.session, session, 60);
    k.clock.advance(-5_000);
    expect(await k.consent.verify(STATEMENT.session, jws)).toBeDefined();
  });

  it('an authorization code carries exp = issue time + its lifetime; once past, it is still opened (so the token endpoint can say it expired)', async () => {
    const k = services();
    const sealed = await k.authorization.encrypt(code, 60);
    k.clock.advance(61_000);
    expect(await k.token.decrypt(sealed)).toMatchObject({ ...code, iat: T0 / 1000, exp: T0 / 1000 + 60 });
  });
});
