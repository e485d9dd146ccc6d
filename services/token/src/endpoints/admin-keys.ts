import type { KeyManager } from '@grantline/keys';
import { bearerMatches, sha256Digest } from '@grantline/oauth';
import { problem } from '@grantline/service-kit';
import type { RequestHandler } from 'express';

/** POST /admin/keys/rotate (admin bearer): publish a new signing key; it signs after the lead time. */
export const rotateKeysEndpoint = (keys: KeyManager, adminToken: string): RequestHandler => {
  const expected = sha256Digest(adminToken);
  return async (req, res, next) => {
    if (!bearerMatches(req.get('authorization'), expected)) {
      res.set('WWW-Authenticate', 'Bearer realm="grantline-admin"');
      return void problem(res, 401, 'Unauthorized', 'a valid admin bearer token is required');
    }
    try {
      const { kid, activatesAt } = await keys.rotate();
      res.status(201).json({ kid, activates_at: activatesAt.toISOString() });
    } catch (error) {
      next(error);
    }
  };
};
