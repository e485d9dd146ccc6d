import { createHash, randomBytes } from 'node:crypto';
import { manualClock } from '@grantline/clock';
import type { TokenEvent } from '@grantline/events';
import { FlowKeys } from '@grantline/flow';
import { generateKeyMaterial, parsePrivateKeys, parsePublicKeys, publicJwks } from '@grantline/keys';
import type { ClientRecord } from '@grantline/oauth';
import { describe, expect, it } from 'vitest';
import { authorizationCodeGrant } from '../src/grants/authorization-code.ts';
import { type RefreshPolicy, refreshTokenGrant } from '../src/grants/refresh-token.ts';
import { revokedInFlight, type Standing, type StandingReads } from '../src/grants/standing.ts';
import type { AccessTokenIssuer, IssueRequest, PreparedToken } from '../src/issuer.ts';
import { memoryEventStore } from './memory-event-store.ts';

/**
 * The lifetimes of codes and refresh token families, on a clock the test moves: what the e2e suite
 * once slept for (security checklist items 21, 30 and 33). The grants run as the token service runs
 * them, over an in-memory event store that records events at the same clock.
 */
const { keys } = generateKeyMaterial();
const privateOf = (purpose: keyof typeof keys, use: 'sig' | 'enc') =>
  parsePrivateKeys(JSON.stringify(keys[purpose]), use);
const publicOf = (purpose: keyof typeof keys, use: 'sig' | 'enc') =>
  parsePublicKeys(JSON.stringify(publicJwks(privateOf(purpose, use))), use);

const REDIRECT_URI = 'https://app.example/cb';
const client: ClientRecord = {
  clientId: 'cl_1',
  status: 'active',
  tokenEndpointAuthMethod: 'client_secret_basic',
  grantTypes: ['authorization_code', 'refresh_token'],
  scopes: ['accounting.read'],
  resources: [],
  redirectUris: [REDIRECT_URI],
};
/** the short settings the e2e suite used: code 3 s, grace 3 s, idle 7 s; and a 20 s maximum lifetime */
const POLICY: RefreshPolicy = {
  graceSeconds: 3,
  idleSeconds: 7,
  maxLifetimeSeconds: 20,
  accessTokenTtlSeconds: 600,
  catchUpMs: 0,
};
const CODE_TTL_SECONDS = 3;

/** the authorization service (mints codes) and the token service (redeems them), on one clock */
const tokenService = () => {
  const clock = manualClock(Date.parse('2033-01-01T00:00:00Z'));
  const store = memoryEventStore(clock);
  const authorization = new FlowKeys({
    signing: { codeSigning: privateOf('codeSigning', 'sig') },
    codeEncryption: publicOf('codeEncryption', 'enc'),
    clock,
  });
  const grant = {
    grantId: 'grant-1',
    subject: 'user-1',
    clientId: client.clientId,
    scopes: ['accounting.read'],
    organisations: ['org-1'],
    status: 'active' as 'active' | 'revoked',
  };
  const user = { userId: 'user-1', username: 'user', status: 'active' as const, organisations: ['org-1'] };
  /** the admin's latest subject or client revocation, as the projection holds it */
  const wide: { revokedAt?: number; onIssue?: () => void } = {};
  // the token service's one-statement reads, over the same projections held in memory
  const standingOf = (): Standing => ({ grant, user, revokedAt: wide.revokedAt, sessionEnded: false });
  const standing: StandingReads = {
    async family(streamId, fromVersion) {
      const { events } = await store.readStream<TokenEvent>(streamId, { fromVersion, withFirst: true });
      return { events, standing: events.length > 0 ? standingOf() : undefined };
    },
    of: async () => standingOf(),
    // the condition the Postgres statement checks, as the memory store evaluates it
    stillGranted: (_names, since) =>
      Object.assign(
        { sql: '', values: [], refusal: revokedInFlight },
        {
          holds: () =>
            grant.status !== 'revoked' && !(wide.revokedAt !== undefined && since <= wide.revokedAt),
        },
      ),
  };
  const prepare = (request: IssueRequest): PreparedToken => {
    wide.onIssue?.();
    return {
      response: { access_token: `at-${request.jti}`, token_type: 'Bearer', expires_in: 600 },
      record: {
        streamId: `access-token-${request.jti}`,
        event: {
          type: 'AccessTokenIssued',
          data: {
            jti: request.jti!,
            clientId: request.clientId,
            subject: request.subject,
            grantType: request.grantType,
            scopes: [...request.scopes],
            audience: [...request.audience],
            expiresAt: new Date(clock.now() + 600_000).toISOString(),
          },
        },
      },
      recorded: () => {},
    };
  };
  const issue: AccessTokenIssuer = Object.assign(async (request: IssueRequest) => prepare(request).response, {
    prepare,
  });
  const common = { store, standing, issue, defaultAudience: 'https://as.example', clock };
  const codes = authorizationCodeGrant({
    ...common,
    keys: new FlowKeys({
      codeDecryption: privateOf('codeEncryption', 'enc'),
      verifying: { codeSigning: publicOf('codeSigning', 'sig') },
      clock,
    }),
    accessTokenTtlSeconds: 600,
  });
  const refreshes = refreshTokenGrant({ ...common, policy: POLICY });

  const verifier = randomBytes(32).toString('base64url');
  /** a code as the complete endpoint mints it, now on the clock */
  const code = () =>
    authorization.encrypt(
      {
        jti: randomBytes(18).toString('base64url'),
        cid: client.clientId,
        ruri: REDIRECT_URI,
        rs: true,
        cc: createHash('sha256').update(verifier).digest('base64url'),
        sub: 'user-1',
        gid: 'grant-1',
        scp: ['accounting.read'],
        orgs: ['org-1'],
        res: [],
        auth_time: clock.now() / 1000,
      },
      CODE_TTL_SECONDS,
    );
  const redeem = (value: string) =>
    codes.handle({
      client,
      form: {
        grant_type: 'authorization_code',
        code: value,
        redirect_uri: REDIRECT_URI,
        code_verifier: verifier,
      },
      resources: [],
    });
  return {
    clock,
    store,
    grant,
    wide,
    code,
    redeem,
    /** a new refresh token family, redeemed now: its generation 0 */
    family: async () => (await redeem(await code())).refresh_token!,
    refresh: (token: string) =>
      refreshes.handle({
        client,
        form: { grant_type: 'refresh_token', refresh_token: token },
        resources: [],
      }),
  };
};

const refused = (description: RegExp) =>
  expect.objectContaining({ error: 'invalid_grant', message: expect.stringMatching(description) });

describe('authorization code lifetime (item 21)', () => {
  it('a code is redeemed within its lifetime, and invalid_grant "expired" once it has passed', async () => {
    const s = tokenService();
    const inTime = await s.code();
    s.clock.advance(CODE_TTL_SECONDS * 1000 - 1);
    await expect(s.redeem(inTime)).resolves.toMatchObject({ token_type: 'Bearer', grant_id: 'grant-1' });

    const late = await s.code();
    s.clock.advance(CODE_TTL_SECONDS * 1000 + 1);
    await expect(s.redeem(late)).rejects.toEqual(refused(/authorization code has expired/));
    // refused before it was spent: nothing recorded for it
    expect([...s.store.streams.keys()].filter((id) => id.startsWith('code-'))).toHaveLength(1);
  });
});

describe('refresh token grace window (item 30)', () => {
  it('the previous token is answered up to graceSeconds after the rotation', async () => {
    const s = tokenService();
    const first = await s.family();
    s.clock.advance(1_000);
    await s.refresh(first);
    s.clock.advance(POLICY.graceSeconds * 1000);
    await expect(s.refresh(first)).resolves.toMatchObject({ token_type: 'Bearer' });
  });

  it('after the grace window the previous token is reuse: invalid_grant, and the family dies', async () => {
    const s = tokenService();
    const first = await s.family();
    s.clock.advance(1_000);
    const rotated = await s.refresh(first);
    s.clock.advance(POLICY.graceSeconds * 1000 + 1);
    await expect(s.refresh(first)).rejects.toEqual(refused(/already used; the grant is revoked/));
    await expect(s.refresh(rotated.refresh_token!)).rejects.toEqual(refused(/revoked/));
  });

  it('as the e2e suite had it: a retry inside the window succeeds; after it, both the first and the retried token fail', async () => {
    const s = tokenService();
    const first = await s.family();
    await expect(s.refresh(first)).resolves.toMatchObject({ token_type: 'Bearer' });
    const retried = await s.refresh(first);
    expect(retried).toMatchObject({ token_type: 'Bearer' });
    s.clock.advance(3_300);
    await expect(s.refresh(first)).rejects.toEqual(refused(/already used/));
    await expect(s.refresh(retried.refresh_token!)).rejects.toEqual(refused(/revoked/));
  });
});

describe('refresh token family idle and maximum lifetime (item 33)', () => {
  it('a family unused for longer than idleSeconds dies; each use starts the idle time again', async () => {
    const s = tokenService();
    let token = await s.family();
    s.clock.advance(POLICY.idleSeconds * 1000);
    token = (await s.refresh(token)).refresh_token!;
    s.clock.advance(POLICY.idleSeconds * 1000);
    token = (await s.refresh(token)).refresh_token!;
    s.clock.advance(POLICY.idleSeconds * 1000 + 1);
    await expect(s.refresh(token)).rejects.toEqual(refused(/refresh token has expired/));
  });

  it('a family dies maxLifetimeSeconds after its code was redeemed, however often it is used', async () => {
    const s = tokenService();
    let token = await s.family();
    for (let t = 0; t < POLICY.maxLifetimeSeconds; t += 5) {
      s.clock.advance(5_000);
      token = (await s.refresh(token)).refresh_token!;
    }
    s.clock.advance(1);
    await expect(s.refresh(token)).rejects.toEqual(refused(/refresh token has expired/));
  });
});

describe('F10: a revocation racing a refresh or a redemption', () => {
  const lastFamilyEvent = (s: ReturnType<typeof tokenService>) =>
    [...s.store.streams.entries()].filter(([id]) => id.startsWith('refresh-')).map(([, e]) => e.at(-1)!);

  it('a grant revoked while the access token is being issued: invalid_grant, and nothing is recorded', async () => {
    const s = tokenService();
    const first = await s.family();
    const streams = [...s.store.streams.keys()];
    s.wide.onIssue = () => {
      s.grant.status = 'revoked';
    };
    await expect(s.refresh(first)).rejects.toEqual(refused(/revoked while this token was being issued/));
    // the rotation and its access token were refused together: the family is where it was
    const [last] = lastFamilyEvent(s);
    expect(last).toMatchObject({ type: 'RefreshTokenIssued' });
    expect([...s.store.streams.keys()]).toEqual(streams);
  });

  it('a code redeemed while its grant is revoked: invalid_grant, and the code is not spent', async () => {
    const s = tokenService();
    const code = await s.code();
    s.wide.onIssue = () => {
      s.grant.status = 'revoked';
    };
    await expect(s.redeem(code)).rejects.toEqual(refused(/revoked while this token was being issued/));
    expect([...s.store.streams.keys()]).toEqual([]);
  });

  it('an admin subject or client revocation ends the families and codes from before it, not those after', async () => {
    const s = tokenService();
    const before = await s.family();
    const code = await s.code();
    s.clock.advance(1_000);
    s.wide.revokedAt = s.clock.now();
    await expect(s.refresh(before)).rejects.toEqual(refused(/administrator revoked/));
    await expect(s.redeem(code)).rejects.toEqual(refused(/administrator revoked/));
    s.clock.advance(1_000);
    const after = await s.family();
    await expect(s.refresh(after)).resolves.toMatchObject({ token_type: 'Bearer' });
  });
});
