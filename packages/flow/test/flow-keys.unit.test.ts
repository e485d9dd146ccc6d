import { generateKeyMaterial, parsePrivateKeys, parsePublicKeys, publicJwks } from '@grantline/keys';
import { describe, expect, it } from 'vitest';
import { type AuthorizationCode, FlowKeys, STATEMENT } from '../src/index.ts';

const { keys, csrf } = generateKeyMaterial();
const privateOf = (purpose: keyof typeof keys, use: 'sig' | 'enc') =>
  parsePrivateKeys(JSON.stringify(keys[purpose]), use);
const publicOf = (purpose: keyof typeof keys, use: 'sig' | 'enc') =>
  parsePublicKeys(JSON.stringify(publicJwks(privateOf(purpose, use))), use);

// each service's keys, as its config.ts gives them
const authorization = new FlowKeys({
  signing: { session: privateOf('session', 'sig'), codeSigning: privateOf('codeSigning', 'sig') },
  verifying: { verdict: publicOf('verdict', 'sig') },
  codeEncryption: publicOf('codeEncryption', 'enc'),
  csrf: [Buffer.from(csrf.authorization, 'base64url')],
});
const consent = new FlowKeys({
  signing: { verdict: privateOf('verdict', 'sig') },
  verifying: { session: publicOf('session', 'sig') },
  csrf: [Buffer.from(csrf.consent, 'base64url')],
});
const token = new FlowKeys({
  codeDecryption: privateOf('codeEncryption', 'enc'),
  verifying: { codeSigning: publicOf('codeSigning', 'sig') },
});

const session = { sid: 's1', sub: 'u1', auth_time: 1 };
const code: AuthorizationCode = {
  jti: 'j',
  cid: 'c',
  ruri: 'https://app.example/cb',
  rs: true,
  cc: 'x',
  sub: 'u1',
  gid: 'g',
  scp: [],
  orgs: [],
  res: [],
  auth_time: 1,
};

describe('flow keys', () => {
  it('finding 5: a service can sign only the statements of its own purposes', async () => {
    await expect(token.sign(STATEMENT.session, session, 60)).rejects.toThrow(/holds no session key/);
    await expect(consent.sign(STATEMENT.session, session, 60)).rejects.toThrow(/holds no session key/);
    await expect(
      authorization.sign(STATEMENT.verdict, { ...session, jti: 'v', req: {} as never }, 60),
    ).rejects.toThrow(/holds no verdict key/);
    const cookie = await authorization.sign(STATEMENT.session, session, 60);
    expect(await consent.verify(STATEMENT.session, cookie)).toMatchObject(session);
    // a session is not a challenge, nor is a verdict
    expect(await consent.verify(STATEMENT.consent, cookie)).toBeUndefined();
    expect(await authorization.verify(STATEMENT.verdict, cookie)).toBeUndefined();
  });

  it('finding 5: only the token service opens a code, and only what the authorization service signed', async () => {
    const sealed = await authorization.encrypt(code, 60);
    expect(await token.decrypt(sealed)).toMatchObject(code);
    expect(await consent.decrypt(sealed)).toBeUndefined();
    expect(await authorization.decrypt(sealed)).toBeUndefined();
    // an expired code is still recognised, so the token endpoint can say it expired
    expect((await token.decrypt(await authorization.encrypt(code, -10)))?.exp).toBeLessThan(
      Date.now() / 1000,
    );
  });

  it('CSRF tokens of one service mean nothing to another', () => {
    const t = authorization.csrfToken('login:abc');
    expect(authorization.csrfValid('login:abc', t)).toBe(true);
    expect(authorization.csrfValid('login:abd', t)).toBe(false);
    expect(consent.csrfValid('login:abc', t)).toBe(false);
  });
});
