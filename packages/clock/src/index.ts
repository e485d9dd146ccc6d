/**
 * Domain time, injected (ARCHITECTURE.md: "time comes from an injected clock"): every lifetime,
 * expiry and rotation reads `clock.now()`, so a test moves a clock instead of sleeping. Timeouts,
 * retries and deadlines of infrastructure (relay, bus, test fixtures) measure elapsed time and keep
 * the system clock.
 */
export interface Clock {
  /** milliseconds since the Unix epoch */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Seconds since the Unix epoch, whole (a JWT NumericDate as `iat`/`exp` usually are). */
export const epochSeconds = (clock: Clock): number => Math.floor(clock.now() / 1000);

/** A clock a test moves by hand. */
export interface ManualClock extends Clock {
  /** moves the clock forward (or back, with a negative value) */
  advance(ms: number): void;
}

/** Stands still at `start` until moved: for unit tests, where every instant is chosen. */
export const manualClock = (start: number = Date.now()): ManualClock => {
  let now = start;
  return {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
  };
};

/**
 * Runs with the system clock, plus whatever `advance` added: for end-to-end tests, where time must
 * still pass between requests (a sign-in before a password change) and a lifetime can be skipped.
 */
export const offsetClock = (): ManualClock => {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance: (ms) => {
      offset += ms;
    },
  };
};
