import type { RegistryEvent } from '@grantline/events';

/** Organisations, users and scopes: small aggregates with pure decide/evolve. */

export class DirectoryRuleViolation extends Error {
  override readonly name = 'DirectoryRuleViolation';
  constructor(
    readonly kind: 'exists' | 'not_found' | 'disabled',
    message: string,
  ) {
    super(message);
  }
}

type Of<T extends RegistryEvent['type']> = Extract<RegistryEvent, { type: T }>;

// Organisation (`org-<id>`)
export type OrganisationState = { exists: false } | { exists: true; name: string };
export const organisationDecider = {
  initialState: (): OrganisationState => ({ exists: false }),
  evolve: (_s: OrganisationState, e: Of<'OrganisationCreated'>): OrganisationState => ({
    exists: true,
    name: e.data.name,
  }),
  decide: (
    c: { organisationId: string; name: string },
    s: OrganisationState,
  ): Of<'OrganisationCreated'>[] => {
    if (s.exists) throw new DirectoryRuleViolation('exists', 'organisation exists');
    return [{ type: 'OrganisationCreated', data: c }];
  },
};

// User (`user-<id>`)
type UserEvent = Of<
  | 'UserCreated'
  | 'UserAddedToOrganisation'
  | 'UserRemovedFromOrganisation'
  | 'UserDisabled'
  | 'UserPasswordChanged'
>;
export type UserState =
  | { status: 'none' }
  | { status: 'active' | 'disabled'; userId: string; username: string; organisations: readonly string[] };
export type UserCommand =
  | { type: 'Create'; userId: string; username: string; sealedPasswordHash: string; organisations: string[] }
  | { type: 'AddToOrganisation'; organisationId: string }
  | { type: 'RemoveFromOrganisation'; organisationId: string }
  | { type: 'Disable' }
  | { type: 'ChangePassword'; sealedPasswordHash: string };

export const userDecider = {
  initialState: (): UserState => ({ status: 'none' }),
  evolve: (s: UserState, e: UserEvent): UserState => {
    switch (e.type) {
      case 'UserCreated':
        return {
          status: 'active',
          userId: e.data.userId,
          username: e.data.username,
          organisations: e.data.organisations,
        };
      case 'UserAddedToOrganisation':
        return s.status === 'none' ? s : { ...s, organisations: [...s.organisations, e.data.organisationId] };
      case 'UserRemovedFromOrganisation':
        return s.status === 'none'
          ? s
          : { ...s, organisations: s.organisations.filter((o) => o !== e.data.organisationId) };
      case 'UserDisabled':
        return s.status === 'none' ? s : { ...s, status: 'disabled' };
      case 'UserPasswordChanged':
        return s;
      default: {
        const exhaustive: never = e;
        return exhaustive;
      }
    }
  },
  decide: (c: UserCommand, s: UserState): UserEvent[] => {
    if (c.type === 'Create') {
      if (s.status !== 'none') throw new DirectoryRuleViolation('exists', 'user exists');
      const { userId, username, sealedPasswordHash, organisations } = c;
      return [{ type: 'UserCreated', data: { userId, username, sealedPasswordHash, organisations } }];
    }
    if (s.status === 'none') throw new DirectoryRuleViolation('not_found', 'unknown user');
    const userId = s.userId;
    switch (c.type) {
      case 'AddToOrganisation':
        return s.organisations.includes(c.organisationId)
          ? []
          : [{ type: 'UserAddedToOrganisation', data: { userId, organisationId: c.organisationId } }];
      case 'RemoveFromOrganisation':
        return s.organisations.includes(c.organisationId)
          ? [{ type: 'UserRemovedFromOrganisation', data: { userId, organisationId: c.organisationId } }]
          : [];
      case 'Disable':
        return s.status === 'disabled' ? [] : [{ type: 'UserDisabled', data: { userId } }];
      case 'ChangePassword':
        return [{ type: 'UserPasswordChanged', data: { userId, sealedPasswordHash: c.sealedPasswordHash } }];
      default: {
        const exhaustive: never = c;
        return exhaustive;
      }
    }
  },
};

// Scope catalogue entry (`scope-<name>`): defining again updates the description.
export type ScopeState = { defined: false } | { defined: true; description: string };
export const scopeDecider = {
  initialState: (): ScopeState => ({ defined: false }),
  evolve: (_s: ScopeState, e: Of<'ScopeDefined'>): ScopeState => ({
    defined: true,
    description: e.data.description,
  }),
  decide: (c: { name: string; description: string }, s: ScopeState): Of<'ScopeDefined'>[] =>
    s.defined && s.description === c.description ? [] : [{ type: 'ScopeDefined', data: c }],
};

export const streams = {
  client: (id: string) => `client-${id}`,
  organisation: (id: string) => `org-${id}`,
  user: (id: string) => `user-${id}`,
  username: (name: string) => `username-${name.toLowerCase()}`,
  scope: (name: string) => `scope-${name}`,
} as const;
