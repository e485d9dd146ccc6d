import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/**
 * User passwords: scrypt at OWASP's parameters (Password Storage Cheat Sheet: N=2^17, r=8, p=1),
 * stored as `scrypt$N$r$p$salt$hash`. One hash costs 128 MiB and about 0.6 s of one core here; the
 * libuv thread pool (4 threads by default) bounds how many run at once.
 */
export const OWASP_SCRYPT_N = 2 ** 17;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;

const scryptAsync = (password: string, salt: Buffer, N: number, r: number, p: number, keylen: number) =>
  new Promise<Buffer>((resolve, reject) =>
    // scrypt needs 128 * N * r bytes; Node refuses more than `maxmem` (32 MiB by default)
    scrypt(password, salt, keylen, { N, r, p, maxmem: 256 * N * r }, (e, key) =>
      e ? reject(e) : resolve(key),
    ),
  );

/** A user password, hashed with scrypt at cost `N` (default: OWASP's). */
export const hashPassword = async (password: string, N: number = OWASP_SCRYPT_N): Promise<string> => {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, N, R, P, KEY_LENGTH);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
};

const parse = (stored: string) => {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  const [N, rr, pp] = [Number(n), Number(r), Number(p)];
  // bounds: a stored hash never makes us spend more than 1 GiB or several seconds
  if (
    scheme !== 'scrypt' ||
    !salt ||
    !hash ||
    !(N >= 2 && N <= 2 ** 20 && rr >= 1 && rr <= 8 && pp >= 1 && pp <= 4)
  )
    return undefined;
  return { N, r: rr, p: pp, salt: Buffer.from(salt, 'base64url'), hash: Buffer.from(hash, 'base64url') };
};

export const verifyPassword = async (password: string, stored: string): Promise<boolean> => {
  const h = parse(stored);
  if (!h) return false;
  const actual = await scryptAsync(password, h.salt, h.N, h.r, h.p, h.hash.length);
  return timingSafeEqual(actual, h.hash);
};

/** Whether a stored hash is weaker than cost `N` (then it is replaced at the next successful sign-in). */
export const needsRehash = (stored: string, N: number = OWASP_SCRYPT_N): boolean => {
  const h = parse(stored);
  return !h || h.N < N || h.r < R || h.p < P;
};

/**
 * `PASSWORD_SCRYPT_N`: the scrypt cost of password hashes, OWASP's 2^17 by default. A lower value
 * is for tests only (each hash at 2^17 is about 0.6 s of CPU) and is logged as a warning.
 */
export const passwordCostVariable = z.coerce
  .number()
  .int()
  .refine((n) => n >= 2 ** 10 && n <= 2 ** 20 && (n & (n - 1)) === 0, 'a power of two from 1024 to 1048576')
  .default(OWASP_SCRYPT_N);
