import * as crypto from 'node:crypto';
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** 256 bits from the CSPRNG, base64url: client secrets, registration tokens, token ids. */
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');

/**
 * Digest of a high-entropy secret: HMAC-SHA-256 under a server-side key. A fast hash is enough for
 * 256-bit random secrets (no dictionary to try) and keeps the token endpoint fast; the key means a
 * leaked digest table alone cannot even confirm a guess.
 */
export const secretDigest = (key: string | Buffer, secret: string): string =>
  createHmac('sha256', key).update(secret, 'utf8').digest('base64url');

/** SHA-256, base64url: how client secrets, registration tokens and admin tokens are stored and compared. */
export const sha256Digest: (value: string) => string =
  // crypto.hash (Node 20.12+): the one-shot digest, about a third of a Hash object's cost; on every
  // client authentication and refresh
  typeof crypto.hash === 'function'
    ? (value) => crypto.hash('sha256', value, 'base64url')
    : (value) => createHash('sha256').update(value, 'utf8').digest('base64url');

/** Constant-time comparison of two digests (also when their lengths differ). */
export const digestsEqual = (a: string, b: string): boolean => {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  const same = x.length === y.length;
  return timingSafeEqual(same ? x : y, y) && same;
};

/** The bearer token of an `Authorization: Bearer` header (RFC 6750 §2.1), if well formed. */
export const bearerToken = (authorization: string | undefined): string | undefined =>
  /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/.exec(authorization ?? '')?.[1];

/** Whether the request's bearer token matches a stored SHA-256 digest, compared in constant time. */
export const bearerMatches = (authorization: string | undefined, digest: string): boolean => {
  const token = bearerToken(authorization);
  return digestsEqual(sha256Digest(token ?? ''), digest) && token !== undefined;
};
