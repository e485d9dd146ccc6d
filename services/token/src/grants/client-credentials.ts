import { UnauthorizedClient } from '@grantline/oauth';
import type { AccessTokenIssuer } from '../issuer.ts';
import { audienceFor, grantedScopes } from './audience.ts';
import type { Grant } from './grant.ts';

/** RFC 6749 §4.4: a confidential client acting on its own behalf (`sub` = client id). */
export const clientCredentialsGrant = (deps: {
  issue: AccessTokenIssuer;
  defaultAudience: string;
}): Grant => ({
  grantType: 'client_credentials',
  async handle({ client, form, resources }) {
    if (!client.grantTypes.includes('client_credentials') || client.tokenEndpointAuthMethod === 'none') {
      throw new UnauthorizedClient('client is not allowed the client_credentials grant');
    }
    return deps.issue({
      subject: client.clientId,
      clientId: client.clientId,
      scopes: grantedScopes(form.scope, client.scopes),
      audience: audienceFor(resources, client.resources, deps.defaultAudience),
      grantType: 'client_credentials',
    });
  },
});
