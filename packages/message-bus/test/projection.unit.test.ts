import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { ConsumedEvent } from '../src/port.ts';
import { combine, onEvents, typedEvent } from '../src/projection.ts';

const consumed = (type: string, data: unknown): ConsumedEvent => ({
  id: '00000000-0000-4000-8000-000000000001',
  type,
  ceType: `dev.grantline.${type}.v1`,
  source: '/grantline/test',
  subject: 'stream-1',
  streamVersion: 1,
  time: new Date(0).toISOString(),
  data,
  topic: 't',
  partition: 0,
  offset: '0',
});

const tx = {} as pg.PoolClient;

describe('typed projections', () => {
  it('narrows an event to the listed types, and passes others by', () => {
    const event = typedEvent(consumed('GrantRevoked', { grantId: 'g', reason: 'user' }), [
      'GrantCreated',
      'GrantRevoked',
    ]);
    expect(event?.type === 'GrantRevoked' && event.data.reason).toBe('user');
    expect(typedEvent(consumed('UserLoggedOut', {}), ['GrantRevoked'])).toBeUndefined();
  });

  it('applies only the types it names, and says which they are', async () => {
    const seen: string[] = [];
    const p = onEvents(['UserLoggedOut'], async (event) => seen.push(event.data.sessionId));
    await p.apply(consumed('UserLoggedOut', { userId: 'u', sessionId: 's' }), tx);
    await p.apply(consumed('UserAuthenticated', { userId: 'u', sessionId: 'other' }), tx);
    expect(seen).toEqual(['s']);
    expect(p.types).toEqual(['UserLoggedOut']);
  });

  it('combines projections: each type once, applied in order in the same transaction', async () => {
    const seen: string[] = [];
    const first = onEvents(['UserCreated', 'UserDisabled'], async (e, t) =>
      seen.push(`first ${e.type} ${t === tx}`),
    );
    const second = onEvents(['UserCreated'], async (e, t) => seen.push(`second ${e.type} ${t === tx}`));
    const both = combine(first, second);
    expect(both.types).toEqual(['UserCreated', 'UserDisabled']);
    await both.apply(consumed('UserCreated', {}), tx);
    await both.apply(consumed('UserDisabled', {}), tx);
    expect(seen).toEqual(['first UserCreated true', 'second UserCreated true', 'first UserDisabled true']);
  });
});
