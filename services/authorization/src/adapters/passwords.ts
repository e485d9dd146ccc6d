import type { EventStore } from '@grantline/event-store';
import { type PrivateKeyEntry, seal } from '@grantline/keys';
import { hashPassword, needsRehash, verifyPassword } from '@grantline/oauth';
import type { UserRecord } from '@grantline/registry-directory';
import type { Credentials } from '../projections/credentials.ts';

export interface Passwords {
  /** Whether `password` is the user's; with no user (or no hash yet), the same work against a dummy. */
  verify(user: UserRecord | undefined, password: string): Promise<boolean>;
  /**
   * After a successful sign-in: a hash weaker than the policy is replaced by one at the policy's
   * cost in this service's credentials table, and recorded for audit as an event sealed to its own
   * credentials key (no other service can read it; none is trusted to write it).
   */
  upgrade(user: UserRecord, password: string): Promise<void>;
}

export const passwords = async (deps: {
  credentials: Credentials;
  store: EventStore;
  /** this service's credentials keys: the first one seals re-hashed passwords */
  keys: readonly PrivateKeyEntry[];
  /** scrypt N of the policy (PASSWORD_SCRYPT_N) */
  cost: number;
}): Promise<Passwords> => {
  // at the policy's cost, so that an unknown username takes as long as a known one
  const dummy = await hashPassword('grantline: no such user', deps.cost);
  return {
    async verify(user, password) {
      const stored = user && (await deps.credentials.of(user.userId));
      const ok = await verifyPassword(password, stored?.hash ?? dummy);
      return ok && stored !== undefined;
    },
    async upgrade(user, password) {
      const stored = await deps.credentials.of(user.userId);
      if (!stored || !needsRehash(stored.hash, deps.cost)) return;
      const hash = await hashPassword(password, deps.cost);
      // Written straight to this service's own table: a re-hash never comes back in from Kafka, where
      // any service that may publish to the grants topic could forge one with the public key.
      await deps.credentials.replaceHash(user.userId, hash, stored.version);
      const sealedPasswordHash = await seal(deps.keys[0]!, hash);
      await deps.store.append(`credentials-${user.userId}`, 'any', [
        {
          type: 'UserPasswordRehashed',
          data: { userId: user.userId, sealedPasswordHash, replacesVersion: stored.version },
        },
      ]);
    },
  };
};
