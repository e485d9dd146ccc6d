import { handleCommand } from '@grantline/event-store';
import { bearerToken, InvalidClientMetadata } from '@grantline/oauth';
import type { Request, Response } from 'express';
import { ClientRuleViolation, type ClientState, clientDecider } from '../domain/client.ts';
import { streams } from '../domain/directory.ts';
import { parseClientMetadata, renderClientMetadata } from '../domain/metadata.ts';
import { bearerMatches } from './auth.ts';
import { invalidToken, type RegistryDeps } from './deps.ts';

/**
 * RFC 7592 client configuration endpoint: read, update, delete with the registration access token.
 * An unknown or deleted client answers like a wrong token (401), so client ids cannot be probed.
 */
const authorizedClient = async (deps: RegistryDeps, req: Request, res: Response) => {
  const clientId = String(req.params.client_id);
  const { events } = await deps.store.readStream(streams.client(clientId));
  const state = events.reduce(
    (s, e) => clientDecider.evolve(s, e as never),
    clientDecider.initialState(),
  ) as ClientState;
  if (
    state.status === 'none' ||
    state.status === 'deleted' ||
    !bearerMatches(req, state.registrationTokenDigest)
  ) {
    invalidToken(res, 'invalid registration access token');
    return undefined;
  }
  return state;
};

/**
 * RFC 7592 §3 client information response: the metadata, `registration_client_uri` and the
 * `registration_access_token` (the one presented: Grantline does not rotate it on read or update).
 */
const render = (state: Extract<ClientState, { clientId: string }>, deps: RegistryDeps, req: Request) => ({
  client_id: state.clientId,
  client_id_issued_at: state.issuedAt,
  registration_access_token: bearerToken(req.get('authorization')),
  registration_client_uri: `${deps.publicUrl}/oauth2/register/${state.clientId}`,
  ...renderClientMetadata(state.metadata),
});

export const readClientEndpoint = (deps: RegistryDeps) => async (req: Request, res: Response) => {
  const state = await authorizedClient(deps, req, res);
  if (state) res.set('Cache-Control', 'no-store').json(render(state, deps, req));
};

export const updateClientEndpoint = (deps: RegistryDeps) => async (req: Request, res: Response) => {
  const state = await authorizedClient(deps, req, res);
  if (!state) return;
  const body = req.body as Record<string, unknown> | undefined;
  if (body?.client_id !== state.clientId)
    throw new InvalidClientMetadata('client_id must match the client being updated');
  const metadata = await parseClientMetadata(body, deps.definedScopes).check();
  try {
    const { newState } = await handleCommand(
      deps.store,
      streams.client(state.clientId),
      // the client's own token: it may narrow, never widen (no new grant type, method or secret)
      { type: 'UpdateMetadata', metadata, by: 'client' },
      clientDecider,
    );
    res.set('Cache-Control', 'no-store').json(render(newState as typeof state, deps, req));
  } catch (error) {
    // any rule the update breaks is the client's metadata at fault (a 400), never a 500
    if (error instanceof ClientRuleViolation && (error.kind === 'widening' || error.kind === 'no_secret'))
      throw new InvalidClientMetadata(error.message);
    throw error;
  }
};

export const deleteClientEndpoint = (deps: RegistryDeps) => async (req: Request, res: Response) => {
  const state = await authorizedClient(deps, req, res);
  if (!state) return;
  await handleCommand(deps.store, streams.client(state.clientId), { type: 'Delete' }, clientDecider);
  res.status(204).end();
};
