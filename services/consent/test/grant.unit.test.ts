import type { GrantEvent } from '@grantline/events';
import { describe, expect, it } from 'vitest';
import { type GrantCommand, GrantUnavailable, grantDecider } from '../src/domain/grant.ts';

const run = (commands: GrantCommand[]) => {
  let state = grantDecider.initialState();
  const events: GrantEvent[] = [];
  for (const c of commands) {
    const produced = grantDecider.decide(c, state);
    events.push(...produced);
    state = produced.reduce(grantDecider.evolve, state);
  }
  return { state, events };
};

const create: GrantCommand = {
  type: 'Create',
  grantId: 'grant-1',
  subject: 'user-1',
  clientId: 'client-1',
  scopes: ['a'],
  organisations: ['o1', 'o2'],
  resources: [],
};
const who = { subject: 'user-1', clientId: 'client-1' };

describe('grant decider', () => {
  it('merges scopes and organisations, recording each newly connected organisation', () => {
    const { state, events } = run([create, { type: 'Merge', ...who, scopes: ['b'], organisations: ['o3'] }]);
    expect(state).toMatchObject({ status: 'active', scopes: ['a', 'b'], organisations: ['o1', 'o2', 'o3'] });
    expect(events.map((e) => e.type)).toEqual(['GrantCreated', 'GrantMerged', 'OrganisationConnected']);
  });

  it('replaces scopes and organisations, recording what was connected and disconnected', () => {
    const { state, events } = run([
      create,
      { type: 'Replace', ...who, scopes: ['b'], organisations: ['o2', 'o3'] },
    ]);
    expect(state).toMatchObject({ scopes: ['b'], organisations: ['o2', 'o3'] });
    expect(events.slice(1)).toEqual([
      { type: 'GrantReplaced', data: { grantId: 'grant-1', scopes: ['b'], organisations: ['o2', 'o3'] } },
      { type: 'OrganisationConnected', data: { grantId: 'grant-1', organisationId: 'o3' } },
      { type: 'OrganisationDisconnected', data: { grantId: 'grant-1', organisationId: 'o1' } },
    ]);
  });

  it('refuses to merge into another user’s, another client’s or a revoked grant', () => {
    expect(() =>
      run([
        create,
        { type: 'Merge', subject: 'user-2', clientId: 'client-1', scopes: [], organisations: ['o1'] },
      ]),
    ).toThrow(GrantUnavailable);
    expect(() =>
      run([
        create,
        { type: 'Merge', subject: 'user-1', clientId: 'client-2', scopes: [], organisations: ['o1'] },
      ]),
    ).toThrow(GrantUnavailable);
    expect(() =>
      run([
        create,
        { type: 'Revoke', reason: 'user' },
        { type: 'Merge', ...who, scopes: [], organisations: ['o1'] },
      ]),
    ).toThrow(GrantUnavailable);
  });

  it('ends the grant when its last organisation is disconnected; revocation is terminal and idempotent', () => {
    const { state, events } = run([
      create,
      { type: 'DisconnectOrganisation', organisationId: 'o1' },
      { type: 'DisconnectOrganisation', organisationId: 'o2' },
      { type: 'Revoke', reason: 'client' },
    ]);
    expect(state.status).toBe('revoked');
    expect(events.map((e) => e.type)).toEqual([
      'GrantCreated',
      'OrganisationDisconnected',
      'OrganisationDisconnected',
      'GrantRevoked',
    ]);
  });
});
