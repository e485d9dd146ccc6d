import { manualClock } from '@grantline/clock';
import { FlowKeys, type FlowRequest, STATEMENT } from '@grantline/flow';
import { generateKeyMaterial, parsePrivateKeys, parsePublicKeys, publicJwks } from '@grantline/keys';
import { describe, expect, it } from 'vitest';
import { rejected } from '../src/domain/flow-state.ts';
import { type FlowDeps, redirectFor } from '../src/flow.ts';

const { keys } = generateKeyMaterial();
const privateOf = (purpose: keyof typeof keys, use: 'sig' | 'enc') =>
  parsePrivateKeys(JSON.stringify(keys[purpose]), use);
const publicOf = (purpose: keyof typeof keys, use: 'sig' | 'enc') =>
  parsePublicKeys(JSON.stringify(publicJwks(privateOf(purpose, use))), use);

const clock = manualClock(Date.parse('2030-01-01T00:00:00Z'));
/** what `redirectFor` uses of the authorization service's dependencies */
const deps = {
  issuer: 'https://as.example',
  consentUrl: 'https://as.example/consent',
  codeTtlSeconds: 60,
  keys: new FlowKeys({
    signing: { session: privateOf('session', 'sig'), codeSigning: privateOf('codeSigning', 'sig') },
    codeEncryption: publicOf('codeEncryption', 'enc'),
    clock,
  }),
  clock,
} as unknown as FlowDeps;
/** the other ends of the hand-offs */
const consent = new FlowKeys({ verifying: { session: publicOf('session', 'sig') }, clock });
const token = new FlowKeys({
  codeDecryption: privateOf('codeEncryption', 'enc'),
  verifying: { codeSigning: publicOf('codeSigning', 'sig') },
  clock,
});

const request: FlowRequest = {
  clientId: 'cl_1',
  redirectUri: 'https://app.example/cb?tenant=1',
  redirectUriGiven: false,
  scopes: ['a'],
  state: 'st&ate',
  codeChallenge: 'c'.repeat(43),
  resources: [],
  prompt: [],
};
const session = { sid: 's1', sub: 'u1', auth_time: 1_893_456_000 };
const T = Date.parse('2030-01-01T00:00:00Z') / 1000;

describe('where the browser goes from each state of the flow', () => {
  it('needs a sign-in: the login form, with a 10-minute challenge carrying the request', async () => {
    const location = await redirectFor(deps, { step: 'needs_sign_in', request });
    const challenge = new URL(location, deps.issuer).searchParams.get('login_challenge')!;
    expect(location.startsWith('/login?login_challenge=')).toBe(true);
    expect(await deps.keys.verify(STATEMENT.login, challenge)).toMatchObject({ req: request, exp: T + 600 });
  });

  it('signed in (or awaiting consent): the consent service, with a challenge bound to the session', async () => {
    for (const step of ['signed_in', 'awaiting_consent'] as const) {
      const url = new URL(await redirectFor(deps, { step, request, session }));
      expect(url.origin + url.pathname).toBe('https://as.example/consent');
      const challenge = await consent.verify(STATEMENT.consent, url.searchParams.get('consent_challenge')!);
      expect(challenge).toMatchObject({ req: request, ...session, exp: T + 600 });
    }
  });

  it('code issued: the client, with a code only the token service opens, its state and the issuer', async () => {
    const code = {
      jti: 'code-1',
      cid: 'cl_1',
      ruri: request.redirectUri,
      rs: false,
      cc: request.codeChallenge,
      sub: 'u1',
      gid: 'g1',
      scp: ['a'],
      orgs: ['o1'],
      res: [],
      auth_time: session.auth_time,
      sid: 's1',
    };
    const url = new URL(await redirectFor(deps, { step: 'code_issued', request, code }));
    expect(url.searchParams.get('tenant')).toBe('1');
    expect(url.searchParams.get('state')).toBe('st&ate');
    expect(url.searchParams.get('iss')).toBe('https://as.example');
    expect(await token.decrypt(url.searchParams.get('code')!)).toMatchObject({ ...code, exp: T + 60 });
  });

  it('rejected: the client, with error, error_description, state and iss (RFC 9207)', async () => {
    const url = new URL(
      await redirectFor(deps, rejected(request, 'login_required', 'the user is not signed in')),
    );
    expect(Object.fromEntries(url.searchParams)).toEqual({
      tenant: '1',
      error: 'login_required',
      error_description: 'the user is not signed in',
      state: 'st&ate',
      iss: 'https://as.example',
    });
  });

  it('from a state that waits for an input within the request, nowhere: that is a bug', async () => {
    await expect(redirectFor(deps, { step: 'validated', request })).rejects.toThrow(/does not leave/);
  });
});
