import { randomBytes } from 'node:crypto';
import { manualClock } from '@grantline/clock';
import type { KeyManager } from '@grantline/keys';
import { describe, expect, it } from 'vitest';
import { familyStream, newFamilyId, newRefreshToken } from '../src/grants/refresh-tokens.ts';
import { type RevocationDeps, revokeToken } from '../src/revocation.ts';
import { memoryEventStore } from './memory-event-store.ts';

/** RFC 7009 look-ups over an in-memory store: what a presented refresh token revokes, and when nothing. */
const setting = () => {
  const clock = manualClock(Date.parse('2033-01-01T00:00:00Z'));
  const store = memoryEventStore(clock);
  const deps: RevocationDeps = {
    store,
    keys: { jwks: () => ({ keys: [] }) } as unknown as KeyManager,
    issuer: 'https://as.example',
    accessTokenTtlSeconds: 600,
    clock,
    authorizationCodeClient: async () => 'cl_1',
  };
  const family = async (clientId = 'cl_1') => {
    const familyId = newFamilyId();
    const token = newRefreshToken(familyId, 0);
    await store.append(familyStream(familyId), 'no_stream', [
      {
        type: 'RefreshTokenIssued',
        data: {
          familyId,
          tokenId: `${familyId}.0`,
          secretDigest: token.secretDigest,
          clientId,
          grantId: 'grant-1',
          subject: 'user-1',
          scopes: ['accounting.read'],
          organisations: ['org-1'],
          resources: [],
          accessTokenId: 'at-0',
        },
      },
    ]);
    return { familyId, token: token.token };
  };
  const events = (familyId: string) => store.streams.get(familyStream(familyId)) ?? [];
  return { deps, family, events };
};

describe('RFC 7009 look-ups', () => {
  it('a refresh token of the client revokes its family (reason client) listing its access tokens, once', async () => {
    const s = setting();
    const { familyId, token } = await s.family();
    await expect(revokeToken(s.deps, 'cl_1', token, undefined)).resolves.toBe('refresh_family_revoked');
    expect(s.events(familyId).at(-1)).toMatchObject({
      type: 'RefreshFamilyRevoked',
      data: { reason: 'client', accessTokenIds: ['at-0'] },
    });
    await expect(revokeToken(s.deps, 'cl_1', token, 'refresh_token')).resolves.toBe('already_revoked');
    expect(s.events(familyId)).toHaveLength(2);
  });

  it("another client's refresh token, a wrong secret or an unknown family change nothing", async () => {
    const s = setting();
    const { familyId, token } = await s.family('cl_2');
    await expect(revokeToken(s.deps, 'cl_1', token, undefined)).resolves.toBe('not_this_clients');
    const forged = `${token.slice(0, token.lastIndexOf('.'))}.${randomBytes(32).toString('base64url')}`;
    await expect(revokeToken(s.deps, 'cl_2', forged, undefined)).resolves.toBe('unknown');
    await expect(
      revokeToken(s.deps, 'cl_2', `${newFamilyId()}.0.${'A'.repeat(43)}`, undefined),
    ).resolves.toBe('unknown');
    expect(s.events(familyId)).toHaveLength(1);
  });

  it('a hint only orders the look-ups; an authorization code is unsupported for its client only', async () => {
    const s = setting();
    const { token } = await s.family();
    await expect(revokeToken(s.deps, 'cl_1', token, 'access_token')).resolves.toBe('refresh_family_revoked');
    const jwe = 'eyJhbGciOiJFQ0RILUVTIn0.a.b.c.d';
    await expect(revokeToken(s.deps, 'cl_1', jwe, undefined)).resolves.toBe('unsupported');
    await expect(revokeToken(s.deps, 'cl_2', jwe, undefined)).resolves.toBe('not_this_clients');
    await expect(revokeToken(s.deps, 'cl_1', 'garbage', 'refresh_token')).resolves.toBe('unknown');
  });
});
