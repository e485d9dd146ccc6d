import { epochSeconds } from '@grantline/clock';
import { handleCommand } from '@grantline/event-store';
import { formatScope, randomToken } from '@grantline/oauth';
import type { Request, Response } from 'express';
import { clientDecider, usesSecret } from '../domain/client.ts';
import { streams } from '../domain/directory.ts';
import { parseClientMetadata, renderClientMetadata } from '../domain/metadata.ts';
import { initialAccessTokenOf, sha256 } from './auth.ts';
import type { RegistryDeps } from './deps.ts';
import { invalidToken } from './deps.ts';

/**
 * RFC 7591 §3: dynamic client registration, guarded by a live initial access token (one the admin
 * API issued and has not revoked; the admin token itself is not one).
 */
export const registerEndpoint = (deps: RegistryDeps) => async (req: Request, res: Response) => {
  const initialAccessTokenId = await initialAccessTokenOf(deps.store, req);
  if (!initialAccessTokenId) return invalidToken(res, 'initial access token required');
  const metadata = await parseClientMetadata(req.body, deps.definedScopes).check();
  const clientId = `cl_${randomToken(16)}`;
  const secret = usesSecret(metadata.tokenEndpointAuthMethod) ? randomToken(32) : undefined;
  const registrationToken = randomToken(32);
  const now = epochSeconds(deps.clock);
  await handleCommand(
    deps.store,
    streams.client(clientId),
    {
      type: 'Register',
      clientId,
      metadata,
      ...(secret && { secretDigest: sha256(secret) }),
      registrationTokenDigest: sha256(registrationToken),
      initialAccessTokenId,
      now,
    },
    clientDecider,
  );
  res
    .status(201)
    .set('Cache-Control', 'no-store')
    .json({
      client_id: clientId,
      ...(secret && { client_secret: secret, client_secret_expires_at: 0 }),
      client_id_issued_at: now,
      registration_access_token: registrationToken,
      registration_client_uri: `${deps.publicUrl}/oauth2/register/${clientId}`,
      ...renderClientMetadata(metadata),
      scope: formatScope(metadata.scopes),
    });
};
