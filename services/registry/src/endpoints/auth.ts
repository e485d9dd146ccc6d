import { bearerMatches as matches, sha256Digest } from '@grantline/oauth';
import type { Request } from 'express';

export const sha256 = sha256Digest;

/** Compares the request's bearer token with a stored digest in constant time. */
export const bearerMatches = (req: Request, digest: string): boolean =>
  matches(req.get('authorization'), digest);
