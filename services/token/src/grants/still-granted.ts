import type { GrantQueries, GrantRecord } from '@grantline/grant-directory';
import { InvalidGrant } from '@grantline/oauth';
import type { WideRevocations } from '../projections/wide-revocations.ts';

export interface RevocationViews {
  grants: GrantQueries;
  revocations: WideRevocations;
}

/**
 * Refuses (`invalid_grant`) what this service has learnt was revoked: the grant itself, or
 * everything of the subject or the client that began at or before an admin revocation (`since`:
 * when the family began, or when the code was issued). A grant this service has not projected yet
 * passes here; the callers deal with it (refresh waits for it, a code carries what consent signed).
 */
export const refuseRevoked = async (
  views: RevocationViews,
  subject: { grantId: string; subject: string; clientId: string; since: number },
  /** the grant as the caller read it, or is reading it (else it is read now) */
  read?: { grant: GrantRecord | undefined | Promise<GrantRecord | undefined> },
): Promise<void> => {
  const [grant, revokedAt] = await Promise.all([
    read ? read.grant : views.grants.get(subject.grantId),
    views.revocations.revokedAt(subject.subject, subject.clientId),
  ]);
  if (grant?.status === 'revoked') throw new InvalidGrant('the grant has been revoked');
  if (revokedAt !== undefined && subject.since <= revokedAt)
    throw new InvalidGrant("the administrator revoked the user's or the client's tokens");
};
