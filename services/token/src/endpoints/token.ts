import {
  authenticateClient,
  type ClientAuthDeps,
  formOf,
  handle,
  InvalidRequest,
  listOf,
  noStore,
  parseForm,
  UnsupportedGrantType,
} from '@grantline/oauth';
import type { RequestHandler } from 'express';
import type { Grant } from '../grants/grant.ts';

/** POST /oauth2/token (RFC 6749 §3.2): named steps, then the grant module for `grant_type`. */
export const tokenEndpoint = (deps: { auth: ClientAuthDeps; grants: readonly Grant[] }): RequestHandler[] => {
  const grants = new Map(deps.grants.map((g) => [g.grantType, g]));
  return [
    noStore,
    parseForm(['resource']),
    handle(async (req, res) => {
      const form = formOf(res);
      const grantType = form.grant_type;
      if (!grantType) throw new InvalidRequest('grant_type is required');
      const grant = grants.get(grantType);
      // Authenticate first, so an unauthenticated caller learns nothing about what is supported.
      const client = await authenticateClient(deps.auth, req, form);
      if (!grant) throw new UnsupportedGrantType(`grant_type ${grantType.slice(0, 60)} is not supported`);
      res.json(await grant.handle({ client, form, resources: listOf(res, 'resource') }));
    }),
  ];
};
