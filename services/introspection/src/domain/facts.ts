import type { RevocationMessage } from '@grantline/events';
import { revocationKeys } from '@grantline/revocation-cache';

/** A revocation fact as the revocations topic carries it, before the projector dates and numbers it. */
export type Fact = Omit<
  Extract<RevocationMessage, { type: 'RevocationFact' }>['data'],
  'revokedAt' | 'expiresAt' | 'sequence'
>;

/** The deny-list key of a refresh token family (the token service's `refresh-<family id>` stream). */
export const familyKey = (familyId: string) => `family:${familyId}`;

/** `<family id>.<generation>`, the id of one refresh token of a family */
export const familyOfTokenId = (tokenId: string): string => tokenId.slice(0, tokenId.lastIndexOf('.'));

const token = (jti: string): Fact => ({ key: revocationKeys.token(jti), kind: 'token', jti });
const family = (familyId: string): Fact => ({ key: familyKey(familyId), kind: 'family', familyId });

type D = Record<string, unknown> & {
  grantId: string;
  organisationId: string;
  subject: string;
  clientId: string;
  familyId: string;
  tokenId: string;
  tokenType: string;
  accessTokenIds: string[];
};

/**
 * The revocation facts an event of the grants or tokens topic states; none for every other event.
 * Pure and order-free: each fact is a member of a set, so applying events in any order, or again,
 * leaves the same set (revocation is terminal: nothing removes a fact).
 */
export const factsOf = (event: { type: string; data: unknown }): Fact[] => {
  const d = event.data as D;
  switch (event.type) {
    case 'GrantRevoked':
      return [{ key: revocationKeys.grant(d.grantId), kind: 'grant', grantId: d.grantId }];
    case 'OrganisationDisconnected':
      return [
        {
          key: revocationKeys.grantOrganisation(d.grantId, d.organisationId),
          kind: 'grant_organisation',
          grantId: d.grantId,
          organisationId: d.organisationId,
        },
      ];
    case 'SubjectRevoked':
      return [{ key: revocationKeys.subject(d.subject), kind: 'subject', subject: d.subject }];
    case 'ClientRevoked':
      return [{ key: revocationKeys.client(d.clientId), kind: 'client', clientId: d.clientId }];
    case 'TokenRevoked':
      return d.tokenType === 'refresh_token' ? [family(familyOfTokenId(d.tokenId))] : [token(d.tokenId)];
    case 'RefreshFamilyRevoked':
      return [family(d.familyId), ...d.accessTokenIds.map(token)];
    case 'RefreshTokenReuseDetected':
      return [family(d.familyId)];
    case 'CodeReplayDetected':
      return d.accessTokenIds.map(token);
    default:
      return [];
  }
};

/** Event types that state facts: the projector passes over every other one. */
export const REVOKING_EVENT_TYPES = [
  'GrantRevoked',
  'OrganisationDisconnected',
  'SubjectRevoked',
  'ClientRevoked',
  'TokenRevoked',
  'RefreshFamilyRevoked',
  'RefreshTokenReuseDetected',
  'CodeReplayDetected',
] as const;
