import { SESSION_COOKIE } from '@grantline/flow';
import type { Request } from 'express';
import { describe, expect, it } from 'vitest';
import { type AccountDeps, accountSession } from '../src/account.ts';

/** A session store whose reads resolve only when released, to see what runs beside them. */
const deps = (options: { signed: boolean; revoked?: boolean }) => {
  const pending: (() => void)[] = [];
  const held = <T>(value: T) => new Promise<T>((resolve) => pending.push(() => resolve(value)));
  const d = {
    keys: {
      verify: async (_statement: string, cookie: string | undefined) =>
        options.signed && cookie === 'signed' ? { sid: 's1', sub: 'ada', auth_time: 0 } : undefined,
    },
    sessions: { isRevoked: () => held(options.revoked ?? false) },
    people: { user: () => held({ status: 'active', credentialsChangedAt: undefined }) },
  } as unknown as AccountDeps;
  return {
    deps: d,
    release: () => {
      for (const r of pending.splice(0)) r();
    },
    pending,
  };
};
const request = { headers: { cookie: `${SESSION_COOKIE}=signed` } } as unknown as Request;

describe('accountSession with a read alongside', () => {
  it("starts the request's next read beside the session's own, and hands it over with the session", async () => {
    const { deps: d, release, pending } = deps({ signed: true });
    let startedWhileSessionPending = false;
    const session = accountSession(d, request, async (signed) => {
      startedWhileSessionPending = pending.length === 2;
      expect(signed).toEqual({ sid: 's1', sub: 'ada' });
      return 'grant read';
    });
    await new Promise((r) => setImmediate(r));
    release();
    expect(await session).toEqual({ sid: 's1', sub: 'ada', alongside: 'grant read' });
    expect(startedWhileSessionPending).toBe(true);
  });

  it('reads nothing alongside without a validly signed cookie, and drops what it read for a signed-out session', async () => {
    let reads = 0;
    const unsigned = deps({ signed: false });
    expect(await accountSession(unsigned.deps, request, async () => ++reads)).toBeUndefined();
    expect(reads).toBe(0);
    const revoked = deps({ signed: true, revoked: true });
    const session = accountSession(revoked.deps, request, async () => ++reads);
    await new Promise((r) => setImmediate(r));
    revoked.release();
    expect(await session).toBeUndefined();
    expect(reads).toBe(1);
  });

  it('answers for the session alone when the read alongside fails (it is read again where needed)', async () => {
    const signedOut = deps({ signed: true, revoked: true });
    const session = accountSession(signedOut.deps, request, async () => {
      throw new Error('event store down');
    });
    await new Promise((r) => setImmediate(r));
    signedOut.release();
    expect(await session).toBeUndefined();
    const signedIn = deps({ signed: true });
    const live = accountSession(signedIn.deps, request, async () => {
      throw new Error('event store down');
    });
    await new Promise((r) => setImmediate(r));
    signedIn.release();
    expect(await live).toEqual({ sid: 's1', sub: 'ada', alongside: undefined });
  });
});
