import { manualClock } from '@grantline/clock';
import { MemoryKeyValueStore } from '@grantline/key-value';
import { afterAll, describe, expect, it } from 'vitest';
import { singleUse } from '../src/guards.ts';

const clock = manualClock(Date.parse('2031-01-01T00:00:00Z'));
const kv = new MemoryKeyValueStore(() => clock.now());
afterAll(() => kv.close());

describe('single use of a browser statement', () => {
  it('claims a jti once until the statement expires on the injected clock, and no longer', async () => {
    const use = singleUse(kv, 'test:', clock);
    const expiresAt = clock.now() / 1000 + 60;
    expect(await use('verdict', 'j1', expiresAt)).toBe(true);
    expect(await use('verdict', 'j1', expiresAt)).toBe(false);
    // another kind of statement with the same jti is another claim
    expect(await use('consent-form', 'j1', expiresAt)).toBe(true);
    clock.advance(59_000);
    expect(await use('verdict', 'j1', expiresAt)).toBe(false);
    clock.advance(1_000);
    expect(await use('verdict', 'j1', expiresAt)).toBe(true);
  });

  it('holds an already expired statement for a second (a Redis TTL cannot be 0)', async () => {
    const use = singleUse(kv, 'test:', clock);
    const expiredAt = clock.now() / 1000 - 30;
    expect(await use('verdict', 'j2', expiredAt)).toBe(true);
    expect(await use('verdict', 'j2', expiredAt)).toBe(false);
    clock.advance(1_000);
    expect(await use('verdict', 'j2', expiredAt)).toBe(true);
  });
});
