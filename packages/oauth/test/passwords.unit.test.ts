import { describe, expect, it } from 'vitest';
import {
  hashPassword,
  needsRehash,
  OWASP_SCRYPT_N,
  passwordCostVariable,
  verifyPassword,
} from '../src/passwords.ts';

describe('password hashes', () => {
  it("finding 11: default to OWASP's scrypt parameters (N=2^17, r=8, p=1)", async () => {
    expect(OWASP_SCRYPT_N).toBe(131_072);
    expect(passwordCostVariable.parse(undefined)).toBe(131_072);
    const hash = await hashPassword('correct horse battery');
    expect(hash).toMatch(/^scrypt\$131072\$8\$1\$/);
    expect(await verifyPassword('correct horse battery', hash)).toBe(true);
    expect(needsRehash(hash)).toBe(false);
  });

  it('finding 11: a hash below the policy needs re-hashing, one at or above it does not', async () => {
    const weak = await hashPassword('pw', 16_384);
    expect(await verifyPassword('pw', weak)).toBe(true);
    expect(await verifyPassword('pz', weak)).toBe(false);
    expect(needsRehash(weak, 32_768)).toBe(true);
    expect(needsRehash(weak, 16_384)).toBe(false);
    expect(needsRehash('not a hash', 16_384)).toBe(true);
  });

  it('refuses stored parameters that would cost unbounded memory, and costs that are not a power of two', async () => {
    expect(await verifyPassword('pw', 'scrypt$4194304$8$1$c2FsdA$aGFzaA')).toBe(false);
    expect(passwordCostVariable.safeParse('100000').success).toBe(false);
    expect(passwordCostVariable.safeParse('512').success).toBe(false);
  });
});
