import { describe, expect, it } from 'vitest';
import {
  decideRefresh,
  evolveFamily,
  type FamilyState,
  type RefreshAttempt,
} from '../src/domain/refresh-family.ts';

const t0 = Date.parse('2026-01-01T00:00:00Z');
/** a fresh family per use: a fold owns (and extends) its state's maps */
const issued = (): FamilyState =>
  evolveFamily(
    { status: 'none' },
    {
      type: 'RefreshTokenIssued',
      time: new Date(t0),
      data: {
        familyId: 'fam',
        tokenId: 'fam.0',
        secretDigest: 'd0',
        clientId: 'client',
        grantId: 'grant',
        subject: 'user',
        scopes: ['a'],
        organisations: ['o1'],
        resources: [],
        accessTokenId: 'at0',
      },
    },
  );
const rotate = (s: FamilyState, at: number, digest: string): FamilyState => {
  if (s.status === 'none') throw new Error('no family');
  const d = decideRefresh(
    s,
    attempt({
      generation: s.generation,
      secretDigest: s.digests.get(s.generation)!,
      now: at,
      next: { secretDigest: digest, accessTokenId: `at-${digest}` },
    }),
  );
  if (d.outcome !== 'rotate') throw new Error(d.outcome);
  return d.events.reduce<FamilyState>(
    (x, e) => evolveFamily(x, { ...e, time: new Date(at) } as Parameters<typeof evolveFamily>[1]),
    s,
  );
};
const attempt = (a: Partial<RefreshAttempt>): RefreshAttempt => ({
  generation: 0,
  secretDigest: 'd0',
  clientId: 'client',
  now: t0 + 1_000,
  graceSeconds: 0,
  idleSeconds: 3_600,
  maxLifetimeSeconds: 86_400,
  accessTokenTtlSeconds: 600,
  equal: (x, y) => x === y,
  next: { secretDigest: 'd1', accessTokenId: 'at1' },
  ...a,
});

describe('refresh token family', () => {
  it('rotates the current token, and treats the previous one as reuse that revokes the family with its access tokens', () => {
    const s1 = rotate(issued(), t0 + 1_000, 'd1');
    const reuse = decideRefresh(s1, attempt({ generation: 0, secretDigest: 'd0', now: t0 + 2_000 }));
    expect(reuse.outcome).toBe('reuse');
    expect(reuse.outcome === 'reuse' && reuse.events[1]).toMatchObject({
      type: 'RefreshFamilyRevoked',
      data: { reason: 'reuse', accessTokenIds: ['at0', 'at-d1'] },
    });
  });

  it("without a grace window, the previous token is reuse even in the rotation's own millisecond", () => {
    const s1 = rotate(issued(), t0 + 1_000, 'd1');
    expect(decideRefresh(s1, attempt({ generation: 0, now: t0 + 1_000 })).outcome).toBe('reuse');
  });

  it('answers the previous token within the grace window only', () => {
    const s1 = rotate(issued(), t0 + 1_000, 'd1');
    expect(decideRefresh(s1, attempt({ generation: 0, graceSeconds: 5, now: t0 + 5_000 })).outcome).toBe(
      'rotate',
    );
    expect(decideRefresh(s1, attempt({ generation: 0, graceSeconds: 5, now: t0 + 7_000 })).outcome).toBe(
      'reuse',
    );
  });

  it('refuses a wrong secret, another client, an idle or too old family, and one older than a password change', () => {
    expect(decideRefresh(issued(), attempt({ secretDigest: 'nope' })).outcome).toBe('refused');
    expect(decideRefresh(issued(), attempt({ generation: 3 })).outcome).toBe('refused');
    expect(decideRefresh(issued(), attempt({ clientId: 'other' })).outcome).toBe('refused');
    expect(decideRefresh(issued(), attempt({ now: t0 + 3_601_000 })).outcome).toBe('refused');
    expect(decideRefresh(issued(), attempt({ maxLifetimeSeconds: 1, now: t0 + 2_000 })).outcome).toBe(
      'refused',
    );
    expect(decideRefresh(issued(), attempt({ notBefore: t0 + 1 })).outcome).toBe('refused');
    expect(decideRefresh(issued(), attempt({})).outcome).toBe('rotate');
  });
});
