import { describe, expect, it } from 'vitest';
import { epochSeconds, manualClock, offsetClock, systemClock } from '../src/index.ts';

describe('clock', () => {
  it('the system clock is Date.now', () => {
    const before = Date.now();
    const now = systemClock.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it('a manual clock stands still until moved; epoch seconds are whole', () => {
    const clock = manualClock(1_000_999);
    expect(clock.now()).toBe(1_000_999);
    clock.advance(1);
    expect(clock.now()).toBe(1_001_000);
    expect(epochSeconds(clock)).toBe(1_001);
  });

  it('an offset clock runs with real time, ahead by what was added', () => {
    const clock = offsetClock();
    clock.advance(60_000);
    const ahead = clock.now() - Date.now();
    expect(ahead).toBeGreaterThan(59_000);
    expect(ahead).toBeLessThanOrEqual(60_000);
  });
});
