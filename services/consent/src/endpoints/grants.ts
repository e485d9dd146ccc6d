import { handleCommand } from '@grantline/event-store';
import type { GrantEvent } from '@grantline/events';
import {
  authenticateClient,
  type ClientAuthDeps,
  formOf,
  handle,
  InvalidClient,
  noStore,
  OAuthError,
  parseForm,
} from '@grantline/oauth';
import type { People } from '@grantline/registry-directory';
import type { Request, RequestHandler, Response } from 'express';
import { grantDecider } from '../domain/grant.ts';
import type { ConsentDeps } from '../flow.ts';

class InvalidGrantId extends OAuthError {
  readonly error = 'invalid_grant_id';
  override status = 404;
}

const load = async (deps: ConsentDeps, grantId: string) => {
  const { events } = await deps.store.readStream<GrantEvent>(`grant-${grantId}`);
  return events.reduce(
    (s, e) => grantDecider.evolve(s, { type: e.type, data: e.data } as GrantEvent),
    grantDecider.initialState(),
  );
};

/** The grant, if it is active and belongs to the authenticated client; else one 404 for every case. */
const ownedGrant = async (deps: ConsentDeps, auth: ClientAuthDeps, req: Request, res: Response) => {
  const client = await authenticateClient(auth, req, formOf(res) ?? {});
  // a public client proves nothing with its client_id, and grant ids travel inside access tokens
  if (client.tokenEndpointAuthMethod === 'none')
    throw new InvalidClient('a public client cannot use the Grant Management API: it cannot authenticate');
  const grantId = String(req.params.grant_id);
  const grant = /^[A-Za-z0-9_-]{10,100}$/.test(grantId)
    ? await load(deps, grantId)
    : grantDecider.initialState();
  if (grant.status !== 'active' || grant.clientId !== client.clientId)
    throw new InvalidGrantId('the grant is unknown, revoked or not this client’s');
  return grant as Exclude<typeof grant, { status: 'none' }>;
};

/** Reads a form body when there is one (DELETE with client_secret_post), else an empty form. */
const optionalForm: RequestHandler = (req, res, next) => {
  if (req.is('application/x-www-form-urlencoded')) return parseForm()(req, res, next);
  res.locals.form = {};
  res.locals.lists = {};
  next();
};

/**
 * Grant Management for OAuth 2.0 (FAPI WG draft) §5: `GET` returns the grant's scopes and
 * organisations, `DELETE` revokes it (and so every token issued under it). The client authenticates
 * as at the token endpoint.
 */
export const grantManagement = (deps: ConsentDeps, auth: ClientAuthDeps, people: People) => ({
  query: [
    noStore,
    optionalForm,
    handle(async (req, res) => {
      const grant = await ownedGrant(deps, auth, req, res);
      res.json({
        grant_id: grant.grantId,
        scopes: [
          { scope: grant.scopes.join(' '), ...(grant.resources.length > 0 && { resource: grant.resources }) },
        ],
        organisations: await people.organisations(grant.organisations),
      });
    }),
  ] as RequestHandler[],
  revoke: [
    noStore,
    optionalForm,
    handle(async (req, res) => {
      const grant = await ownedGrant(deps, auth, req, res);
      await handleCommand(
        deps.store,
        `grant-${grant.grantId}`,
        { type: 'Revoke', reason: 'client' },
        grantDecider,
      );
      res.status(204).end();
    }),
  ] as RequestHandler[],
});
