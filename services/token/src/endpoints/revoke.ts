import {
  authenticateClient,
  type ClientAuthDeps,
  type FormEndpoint,
  InvalidRequest,
  UnsupportedTokenType,
} from '@grantline/oauth';
import type { Logger } from '@grantline/telemetry';
import { type RevocationDeps, revokeToken } from '../revocation.ts';

/**
 * POST /oauth2/revoke (RFC 7009): the client authenticates as at the token endpoint (same methods,
 * same lock-out), then names one token. 200 with an empty body whether or not anything was revoked
 * (§2.2): an unknown, expired or another client's token changes nothing and is not told apart.
 */
export const revokeEndpoint = (deps: {
  auth: ClientAuthDeps;
  revocation: RevocationDeps;
  logger: Pick<Logger, 'info'>;
}): FormEndpoint => ({
  async handle(req) {
    const { form } = req;
    // authenticate first, so an unauthenticated caller learns nothing about a token
    const client = await authenticateClient(deps.auth, req, form);
    if (!form.token) throw new InvalidRequest('token is required');
    const outcome = await revokeToken(deps.revocation, client.clientId, form.token, form.token_type_hint);
    if (outcome === 'unsupported')
      throw new UnsupportedTokenType(
        'authorization codes cannot be revoked; they are single-use and short-lived',
      );
    deps.logger.info({ clientId: client.clientId, outcome }, 'token revocation');
    return { body: undefined };
  },
});
