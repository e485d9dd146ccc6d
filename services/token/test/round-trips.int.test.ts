import { createHash, randomBytes } from 'node:crypto';
import { manualClock } from '@grantline/clock';
import { migrate, migrateReadModels, PostgresEventStore } from '@grantline/event-store';
import { FlowKeys } from '@grantline/flow';
import { EndedSessions, endedSessionsTables, GrantQueries, grantsTables } from '@grantline/grant-directory';
import {
  generateKeyMaterial,
  type KeyManager,
  parsePrivateKeys,
  parsePublicKeys,
  publicJwks,
} from '@grantline/keys';
import type { ClientRecord } from '@grantline/oauth';
import { People, registryDirectoryTables } from '@grantline/registry-directory';
import { createTestDatabase, type TestDatabase } from '@grantline/testing';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { authorizationCodeGrant } from '../src/grants/authorization-code.ts';
import { portRefreshReads, postgresRefreshReads } from '../src/grants/refresh-reads.ts';
import { refreshTokenGrant } from '../src/grants/refresh-token.ts';
import { familyStream, newFamilyId, newRefreshToken } from '../src/grants/refresh-tokens.ts';
import { accessTokenMinter } from '../src/issuer.ts';
import { WideRevocations, wideRevocationsTables } from '../src/projections/wide-revocations.ts';

/**
 * What a refresh and a code redemption cost Postgres, counted on the pool rather than timed: the
 * statements each sends, in sequential round trips (statements in flight together are one), and
 * how many commits write its events.
 */
const counting = (pool: pg.Pool) => {
  const seen: { round: number; sql: string }[] = [];
  let inFlight = 0;
  let rounds = 0;
  let on = false;
  const track = async <T>(input: unknown, run: () => Promise<T>): Promise<T> => {
    const sql = typeof input === 'string' ? input : String((input as { text: string }).text);
    // the relay's wake-up is sent after the commit and not awaited by the request
    if (!on || sql.includes('pg_notify')) return run();
    if (inFlight === 0) rounds++;
    inFlight++;
    seen.push({ round: rounds, sql: sql.replace(/\s+/g, ' ').trim() });
    try {
      return await run();
    } finally {
      inFlight--;
    }
  };
  const wrapped = new Proxy(pool, {
    get(target, key) {
      if (key === 'query')
        return (input: unknown, values?: unknown[]) =>
          track(input, () => target.query(input as string, values));
      if (key === 'connect')
        return async () => {
          const client = await target.connect();
          return new Proxy(client, {
            get(c, k) {
              if (k === 'query')
                return (input: unknown, values?: unknown[]) =>
                  track(input, () => c.query(input as string, values));
              const value = Reflect.get(c, k);
              return typeof value === 'function' ? value.bind(c) : value;
            },
          });
        };
      const value = Reflect.get(target, key);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    pool: wrapped,
    /** runs `work` counting what it sends */
    async measure<T>(work: () => Promise<T>) {
      seen.length = 0;
      rounds = 0;
      on = true;
      try {
        return { result: await work(), rounds, statements: [...seen] };
      } finally {
        on = false;
      }
    },
  };
};

const SCHEMA = 'token';
const client: ClientRecord = {
  clientId: 'cl_1',
  status: 'active',
  tokenEndpointAuthMethod: 'client_secret_basic',
  grantTypes: ['authorization_code', 'refresh_token'],
  scopes: ['accounting.read'],
  resources: [],
  redirectUris: ['https://app.example/cb'],
};
// every reading a millisecond on: a second use of a token never shares its rotation's millisecond
// (with the grace window off, a retry in the very same millisecond would still be answered)
const base = manualClock(Date.parse('2033-01-01T00:00:00Z'));
const clock = {
  now: () => {
    base.advance(1);
    return base.now();
  },
  advance: (ms: number) => base.advance(ms),
};
const POLICY = {
  graceSeconds: 0,
  idleSeconds: 3600,
  maxLifetimeSeconds: 86400,
  accessTokenTtlSeconds: 600,
  catchUpMs: 0,
};
const { keys } = generateKeyMaterial();
const privateOf = (purpose: keyof typeof keys) => parsePrivateKeys(JSON.stringify(keys[purpose]), 'sig');
const encPrivate = parsePrivateKeys(JSON.stringify(keys.codeEncryption), 'enc');

let db: TestDatabase;
let meter: ReturnType<typeof counting>;
let store: PostgresEventStore;
let deps: {
  store: PostgresEventStore;
  grants: GrantQueries;
  people: People;
  revocations: WideRevocations;
  endedSessions: EndedSessions;
};
const mint = accessTokenMinter({
  keys: { signingKey: () => ({ sign: () => 'header.claims.signature' }) } as unknown as KeyManager,
  issuer: 'https://as.example',
  ttlSeconds: 600,
  clock,
});

beforeAll(async () => {
  db = await createTestDatabase(inject('infra'), 10);
  await migrate(db.pool, SCHEMA);
  await migrateReadModels(db.pool, SCHEMA, [
    ...registryDirectoryTables,
    grantsTables,
    endedSessionsTables,
    wideRevocationsTables,
  ]);
  await db.pool.query(
    `INSERT INTO token.grants (grant_id, subject, client_id, scopes, organisations, status, version, created_at, updated_at)
     VALUES ('grant-1', 'user-1', 'cl_1', '{accounting.read}', '{org-1}', 'active', 1, now(), now())`,
  );
  await db.pool.query(
    `INSERT INTO token.users (user_id, username, status, organisations) VALUES ('user-1', 'ada', 'active', '{org-1}')`,
  );
  meter = counting(db.pool);
  store = new PostgresEventStore({ pool: meter.pool, schema: SCHEMA, source: '/grantline/token', clock });
  deps = {
    store,
    grants: new GrantQueries(meter.pool, SCHEMA),
    people: new People(meter.pool, SCHEMA),
    revocations: new WideRevocations(meter.pool, SCHEMA),
    endedSessions: new EndedSessions(meter.pool, SCHEMA),
  };
});
afterAll(() => db?.drop());

/** a family of grant-1 at generation 0, as a redemption records it */
const family = async () => {
  const familyId = newFamilyId();
  const token = newRefreshToken(familyId, 0);
  await store.append(familyStream(familyId), 'no_stream', [
    {
      type: 'RefreshTokenIssued',
      data: {
        familyId,
        tokenId: `${familyId}.0`,
        secretDigest: token.secretDigest,
        clientId: 'cl_1',
        grantId: 'grant-1',
        subject: 'user-1',
        scopes: ['accounting.read'],
        organisations: ['org-1'],
        resources: [],
        accessTokenId: randomBytes(18).toString('base64url'),
        sessionId: `session-${familyId}`,
      },
    },
  ]);
  return { familyId, token: token.token };
};

const refreshes = () =>
  refreshTokenGrant({
    ...deps,
    reads: postgresRefreshReads(meter.pool, SCHEMA),
    mint,
    policy: POLICY,
    defaultAudience: 'https://api.example',
    endsWithSession: true,
    clock,
  });
const refresh = (token: string) =>
  refreshes().handle({ client, form: { grant_type: 'refresh_token', refresh_token: token }, resources: [] });

/** the transactions that wrote the given streams' events */
const writers = async (streams: string[]) => {
  const { rows } = await db.pool.query<{ stream_id: string; transaction_id: string }>(
    'SELECT stream_id, transaction_id FROM token.events WHERE stream_id = ANY($1)',
    [streams],
  );
  return rows;
};

describe('refresh: round trips to Postgres', () => {
  it('reads in one statement, records the rotation and the access token in one statement and one commit, then re-reads the grant (F10)', async () => {
    const { familyId, token } = await family();
    clock.advance(1_000);
    const { result, rounds, statements } = await meter.measure(() => refresh(token));
    expect(result.refresh_token).toMatch(new RegExp(`^${familyId}\\.1\\.`));

    // 1: the view (one statement); 2: the write (one statement); 3: the F10 re-read (two at once)
    expect(rounds).toBe(3);
    expect(statements.filter((s) => s.round === 1)).toHaveLength(1);
    expect(statements.filter((s) => s.round === 2)).toHaveLength(1);
    expect(statements.find((s) => s.round === 2)!.sql).toMatch(/INSERT INTO token\.events/);
    expect(statements.filter((s) => s.round === 3).map((s) => s.sql)).toEqual([
      expect.stringMatching(/FROM token\.grants/),
      expect.stringMatching(/FROM token\.wide_revocations/),
    ]);
    // no explicit transaction, no savepoint: the one INSERT commits by itself
    expect(statements.filter((s) => /^(BEGIN|COMMIT|SAVEPOINT|RELEASE)/i.test(s.sql))).toEqual([]);
    expect(statements.filter((s) => /INSERT/i.test(s.sql))).toHaveLength(1);

    const jti = (await store.readStream(familyStream(familyId), { fromVersion: 2 })).events[0]!.data as {
      accessTokenId: string;
    };
    const written = await writers([familyStream(familyId), `access-token-${jti.accessTokenId}`]);
    expect(written).toHaveLength(3); // the family's first event, its rotation, the access token
    const [rotation, accessToken] = [
      written.filter((w) => w.stream_id === familyStream(familyId)),
      written.filter((w) => w.stream_id.startsWith('access-token-')),
    ];
    expect(accessToken).toHaveLength(1);
    expect(rotation.map((r) => r.transaction_id)).toContain(accessToken[0]!.transaction_id);
  });

  it('two concurrent refreshes with one token: the store lets one rotate, the other is reuse and revokes the family', async () => {
    const { familyId, token } = await family();
    const results = await Promise.allSettled([refresh(token), refresh(token)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({
      error: 'invalid_grant',
      message: expect.stringMatching(/already used/),
    });
    const types = (await store.readStream(familyStream(familyId))).events.map((e) => e.type);
    expect(types).toEqual([
      'RefreshTokenIssued',
      'RefreshTokenRotated',
      'RefreshTokenReuseDetected',
      'RefreshFamilyRevoked',
    ]);
  });

  it('reads the same view in one statement as through the ports one read after another', async () => {
    const { familyId, token } = await family();
    clock.advance(1_000);
    const rotated = (await refresh(token)).refresh_token!;
    await db.pool.query(
      `INSERT INTO token.wide_revocations (kind, id, revoked_at) VALUES ('client', 'cl_1', '2030-01-01T00:00:00Z')`,
    );
    await db.pool.query(`INSERT INTO token.ended_sessions (session_id, ended_at) VALUES ($1, now())`, [
      `session-${familyId}`,
    ]);
    const one = postgresRefreshReads(db.pool, SCHEMA);
    const ports = portRefreshReads(deps);
    for (const generation of [0, 1, 2]) {
      const [a, b] = await Promise.all([one(familyId, generation), ports(familyId, generation)]);
      expect(a).toEqual(b);
    }
    const view = await one(familyId, Number(rotated.split('.')[1]));
    expect(view).toMatchObject({
      version: 2,
      grant: { grantId: 'grant-1', status: 'active' },
      user: { userId: 'user-1', status: 'active' },
      revokedAt: Date.parse('2030-01-01T00:00:00Z'),
      sessionEnded: true,
    });
    expect(await one(newFamilyId(), 0)).toEqual({
      state: { status: 'none' },
      version: 0,
      sessionEnded: false,
    });
  });
});

describe('authorization code redemption: round trips to Postgres', () => {
  it('records the redemption, the family and the access token in one statement and one commit, without savepoints', async () => {
    const authorization = new FlowKeys({
      signing: { codeSigning: privateOf('codeSigning') },
      codeEncryption: parsePublicKeys(JSON.stringify(publicJwks(encPrivate)), 'enc'),
      clock,
    });
    const codes = authorizationCodeGrant({
      ...deps,
      keys: new FlowKeys({
        codeDecryption: encPrivate,
        verifying: {
          codeSigning: parsePublicKeys(JSON.stringify(publicJwks(privateOf('codeSigning'))), 'sig'),
        },
        clock,
      }),
      mint,
      defaultAudience: 'https://api.example',
      accessTokenTtlSeconds: 600,
      clock,
    });
    const verifier = randomBytes(32).toString('base64url');
    const jti = randomBytes(18).toString('base64url');
    const code = await authorization.encrypt(
      {
        jti,
        cid: 'cl_1',
        ruri: 'https://app.example/cb',
        rs: true,
        cc: createHash('sha256').update(verifier).digest('base64url'),
        sub: 'user-1',
        gid: 'grant-1',
        scp: ['accounting.read'],
        orgs: ['org-1'],
        res: [],
        auth_time: clock.now() / 1000,
      },
      60,
    );
    const redeem = () =>
      codes.handle({
        client,
        form: {
          grant_type: 'authorization_code',
          code,
          redirect_uri: 'https://app.example/cb',
          code_verifier: verifier,
        },
        resources: [],
      });
    const { result, rounds, statements } = await meter.measure(redeem);
    expect(result.refresh_token).toBeDefined();
    // 1: grant, user and the admin's revocations at once; 2: the write; 3: the F10 re-read
    expect(rounds).toBe(3);
    expect(statements.filter((s) => s.round === 2)).toHaveLength(1);
    expect(statements.filter((s) => /^(BEGIN|COMMIT|SAVEPOINT|RELEASE)/i.test(s.sql))).toEqual([]);
    const familyId = result.refresh_token!.split('.')[0]!;
    const redeemed = (await store.readStream(`code-${jti}`)).events[0]!.data as { accessTokenId: string };
    const written = await writers([
      `code-${jti}`,
      familyStream(familyId),
      `access-token-${redeemed.accessTokenId}`,
    ]);
    // one transaction wrote all three
    expect(new Set(written.map((w) => w.transaction_id)).size).toBe(1);
    expect(written).toHaveLength(3);

    // still single-use, decided by the store: of 10 more at once, none
    const again = await Promise.allSettled(Array.from({ length: 10 }, redeem));
    expect(again.every((r) => r.status === 'rejected')).toBe(true);
  });
});
