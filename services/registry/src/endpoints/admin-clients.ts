import { handleCommand } from '@grantline/event-store';
import { randomToken } from '@grantline/oauth';
import type { Router } from 'express';
import { z } from 'zod';
import { clientDecider } from '../domain/client.ts';
import { streams } from '../domain/directory.ts';
import { parseClientMetadata, renderClientMetadata } from '../domain/metadata.ts';
import { BadInput, parse, wrap } from './admin-input.ts';
import { sha256 } from './auth.ts';
import type { RegistryDeps } from './deps.ts';

/** an audience as tokens name it: an absolute http(s) URL without a fragment, normalised (RFC 8707 §2) */
const Resource = z
  .url({ protocol: /^https?$/ })
  .max(2_000)
  .refine((r) => !r.includes('#'), 'a resource has no fragment (RFC 8707 §2)')
  .transform((r) => new URL(r).href);
const ResourceServer = z.strictObject({ resources: z.array(Resource).min(1).max(20) });

/**
 * Client administration: an administrator may change anything about a client (unlike the client's
 * own RFC 7592 updates), and the events say so (`by: 'admin'`).
 */
export const clientAdminRoutes = (router: Router, deps: RegistryDeps) => {
  /** the whole metadata, as in RFC 7591/7592; a move onto a secret method without one issues a secret */
  router.put(
    '/clients/:id',
    wrap(async (req, res) => {
      const clientId = String(req.params.id);
      const body = req.body as Record<string, unknown> | undefined;
      if (body?.client_id !== undefined && body.client_id !== clientId)
        throw new BadInput('client_id: must match the client being updated');
      const metadata = await parseClientMetadata(body, deps.definedScopes).check();
      const secret = randomToken(32);
      const { newEvents } = await handleCommand(
        deps.store,
        streams.client(clientId),
        { type: 'UpdateMetadata', metadata, by: 'admin', newSecretDigest: sha256(secret) },
        clientDecider,
      );
      const issued = newEvents.some((e) => e.type === 'ClientSecretRotated');
      res.set('Cache-Control', 'no-store').json({
        client_id: clientId,
        ...(issued && { client_secret: secret, client_secret_expires_at: 0 }),
        ...renderClientMetadata(metadata),
      });
    }),
  );

  router.post(
    '/clients/:id/secret',
    wrap(async (req, res) => {
      const secret = randomToken(32);
      await handleCommand(
        deps.store,
        streams.client(String(req.params.id)),
        { type: 'RotateSecret', secretDigest: sha256(secret) },
        clientDecider,
      );
      res
        .set('Cache-Control', 'no-store')
        .json({ client_id: req.params.id, client_secret: secret, client_secret_expires_at: 0 });
    }),
  );

  /**
   * The resource-server role (security checklist item 36): introspection of the access tokens for
   * these audiences and the revocation stream. Granted here only, never self-declared at registration.
   */
  router.put(
    '/clients/:id/resource-server',
    wrap(async (req, res) => {
      const { resources } = parse(ResourceServer, req.body);
      const clientId = String(req.params.id);
      await handleCommand(
        deps.store,
        streams.client(clientId),
        { type: 'SetResourceServer', resources },
        clientDecider,
      );
      res.json({ client_id: clientId, resources });
    }),
  );

  router.delete(
    '/clients/:id/resource-server',
    wrap(async (req, res) => {
      await handleCommand(
        deps.store,
        streams.client(String(req.params.id)),
        { type: 'SetResourceServer', resources: [] },
        clientDecider,
      );
      res.status(204).end();
    }),
  );

  router.post(
    '/clients/:id/disable',
    wrap(async (req, res) => {
      await handleCommand(
        deps.store,
        streams.client(String(req.params.id)),
        { type: 'Disable' },
        clientDecider,
      );
      res.status(204).end();
    }),
  );
};
