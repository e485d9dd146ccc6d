import {
  authenticateClient,
  type ClientAuthDeps,
  type FormEndpoint,
  InvalidRequest,
  UnsupportedGrantType,
} from '@grantline/oauth';
import type { Grant } from '../grants/grant.ts';

/** POST /oauth2/token (RFC 6749 §3.2): named steps, then the grant module for `grant_type`. */
export const tokenEndpoint = (deps: { auth: ClientAuthDeps; grants: readonly Grant[] }): FormEndpoint => {
  const grants = new Map(deps.grants.map((g) => [g.grantType, g]));
  return {
    repeatable: ['resource'],
    async handle(req) {
      const { form } = req;
      const grantType = form.grant_type;
      if (!grantType) throw new InvalidRequest('grant_type is required');
      const grant = grants.get(grantType);
      // Authenticate first, so an unauthenticated caller learns nothing about what is supported.
      const client = await authenticateClient(deps.auth, req, form);
      if (!grant) throw new UnsupportedGrantType(`grant_type ${grantType.slice(0, 60)} is not supported`);
      return { body: await grant.handle({ client, form, resources: req.lists.resource ?? [] }) };
    },
  };
};
