import { revocationKeys } from '@grantline/revocation-cache';
import { describe, expect, it } from 'vitest';
import { factsOf, familyKey, REVOKING_EVENT_TYPES } from '../src/domain/facts.ts';

const family = 'AAAAAAAAAAAAAAAAAAAAAA';

describe('the facts each event states', () => {
  it.each([
    [{ type: 'GrantRevoked', data: { grantId: 'g1', reason: 'user' } }, [revocationKeys.grant('g1')]],
    [
      { type: 'OrganisationDisconnected', data: { grantId: 'g1', organisationId: 'o1' } },
      [revocationKeys.grantOrganisation('g1', 'o1')],
    ],
    [{ type: 'SubjectRevoked', data: { subject: 'u1', reason: 'admin' } }, [revocationKeys.subject('u1')]],
    [{ type: 'ClientRevoked', data: { clientId: 'c1', reason: 'admin' } }, [revocationKeys.client('c1')]],
    [
      { type: 'TokenRevoked', data: { tokenId: 'j1', tokenType: 'access_token', clientId: 'c1' } },
      [revocationKeys.token('j1')],
    ],
    [
      { type: 'TokenRevoked', data: { tokenId: `${family}.3`, tokenType: 'refresh_token', clientId: 'c1' } },
      [familyKey(family)],
    ],
    [
      {
        type: 'RefreshFamilyRevoked',
        data: {
          familyId: family,
          clientId: 'c1',
          grantId: 'g1',
          reason: 'reuse',
          accessTokenIds: ['j1', 'j2'],
        },
      },
      [familyKey(family), revocationKeys.token('j1'), revocationKeys.token('j2')],
    ],
    [
      {
        type: 'RefreshTokenReuseDetected',
        data: { familyId: family, tokenId: `${family}.1`, clientId: 'c1', grantId: 'g1' },
      },
      [familyKey(family)],
    ],
    [
      {
        type: 'CodeReplayDetected',
        data: { codeId: 'k', clientId: 'c1', grantId: 'g1', accessTokenIds: ['j9'] },
      },
      [revocationKeys.token('j9')],
    ],
  ])('%o', (event, keys) => {
    expect(factsOf(event).map((f) => f.key)).toEqual(keys);
    expect(REVOKING_EVENT_TYPES).toContain(event.type);
  });

  it('states nothing for events that revoke nothing (a reconnection resurrects nothing)', () => {
    for (const type of [
      'GrantCreated',
      'OrganisationConnected',
      'GrantMerged',
      'AccessTokenIssued',
      'UserLoggedOut',
    ])
      expect(factsOf({ type, data: {} })).toEqual([]);
  });
});
