import type { GrantEvent } from '@grantline/events';

/**
 * The Grant aggregate (stream `grant-<grant_id>`): what one user let one client do, in which of the
 * user's organisations. Pure: decide and evolve, no I/O.
 */
export type GrantState =
  | { status: 'none' }
  | {
      status: 'active' | 'revoked';
      grantId: string;
      subject: string;
      clientId: string;
      scopes: string[];
      organisations: string[];
      resources: string[];
    };

export type GrantCommand =
  | {
      type: 'Create';
      grantId: string;
      subject: string;
      clientId: string;
      scopes: string[];
      organisations: string[];
      resources: string[];
    }
  | {
      type: 'Merge' | 'Replace';
      subject: string;
      clientId: string;
      scopes: string[];
      organisations: string[];
    }
  | { type: 'DisconnectOrganisation'; organisationId: string }
  | { type: 'Revoke'; reason: 'user' | 'client' | 'admin' | 'code_replay' | 'refresh_reuse' };

/** The grant is not there, not the caller's, or revoked (`invalid_grant_id` to the client). */
export class GrantUnavailable extends Error {}

const union = (a: readonly string[], b: readonly string[]) => [...new Set([...a, ...b])];

export const grantDecider = {
  initialState: (): GrantState => ({ status: 'none' }),

  evolve: (s: GrantState, e: GrantEvent): GrantState => {
    switch (e.type) {
      case 'GrantCreated':
        return {
          status: 'active',
          grantId: e.data.grantId,
          subject: e.data.subject,
          clientId: e.data.clientId,
          scopes: e.data.scopes,
          organisations: e.data.organisations,
          resources: e.data.resources ?? [],
        };
      case 'GrantMerged':
      case 'GrantReplaced':
        return s.status === 'none' ? s : { ...s, scopes: e.data.scopes, organisations: e.data.organisations };
      case 'OrganisationConnected':
        return s.status === 'none'
          ? s
          : { ...s, organisations: union(s.organisations, [e.data.organisationId]) };
      case 'OrganisationDisconnected':
        return s.status === 'none'
          ? s
          : { ...s, organisations: s.organisations.filter((o) => o !== e.data.organisationId) };
      case 'GrantRevoked':
        return s.status === 'none' ? s : { ...s, status: 'revoked' };
      default: {
        const exhaustive: never = e;
        return exhaustive;
      }
    }
  },

  decide: (c: GrantCommand, s: GrantState): GrantEvent[] => {
    if (c.type === 'Create') {
      if (s.status !== 'none') throw new GrantUnavailable('grant exists');
      const { grantId, subject, clientId, scopes, organisations, resources } = c;
      return [
        {
          type: 'GrantCreated',
          data: {
            grantId,
            subject,
            clientId,
            scopes,
            organisations,
            ...(resources.length > 0 && { resources }),
          },
        },
      ];
    }
    if (s.status === 'none') throw new GrantUnavailable('unknown grant');
    const grantId = s.grantId;
    switch (c.type) {
      case 'Merge':
      case 'Replace': {
        if (s.status !== 'active' || s.subject !== c.subject || s.clientId !== c.clientId)
          throw new GrantUnavailable('the grant is not active for this user and client');
        const scopes = c.type === 'Merge' ? union(s.scopes, c.scopes) : [...new Set(c.scopes)];
        const organisations =
          c.type === 'Merge' ? union(s.organisations, c.organisations) : [...new Set(c.organisations)];
        const connected = organisations.filter((o) => !s.organisations.includes(o));
        const disconnected = s.organisations.filter((o) => !organisations.includes(o));
        return [
          {
            type: c.type === 'Merge' ? 'GrantMerged' : 'GrantReplaced',
            data: { grantId, scopes, organisations },
          },
          ...connected.map((organisationId) => ({
            type: 'OrganisationConnected' as const,
            data: { grantId, organisationId },
          })),
          ...disconnected.map((organisationId) => ({
            type: 'OrganisationDisconnected' as const,
            data: { grantId, organisationId },
          })),
        ];
      }
      case 'DisconnectOrganisation': {
        if (s.status !== 'active' || !s.organisations.includes(c.organisationId)) return [];
        const events: GrantEvent[] = [
          { type: 'OrganisationDisconnected', data: { grantId, organisationId: c.organisationId } },
        ];
        // a grant with no organisation left reaches nothing: it ends
        if (s.organisations.length === 1)
          events.push({ type: 'GrantRevoked', data: { grantId, reason: 'user' } });
        return events;
      }
      case 'Revoke':
        return s.status === 'revoked' ? [] : [{ type: 'GrantRevoked', data: { grantId, reason: c.reason } }];
      default: {
        const exhaustive: never = c;
        return exhaustive;
      }
    }
  },
};
