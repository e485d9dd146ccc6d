import { ConcurrencyError, handleCommand } from '@grantline/event-store';
import { OAuthError, randomToken } from '@grantline/oauth';
import { problem } from '@grantline/service-kit';
import express, { type NextFunction, type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { ClientRuleViolation } from '../domain/client.ts';
import {
  DirectoryRuleViolation,
  organisationDecider,
  scopeDecider,
  streams,
  userDecider,
} from '../domain/directory.ts';
import { InitialAccessTokenNotFound } from '../domain/initial-access-tokens.ts';
import { clientAdminRoutes } from './admin-clients.ts';
import { initialAccessTokenRoutes } from './admin-initial-access-tokens.ts';
import { BadInput, parse, wrap } from './admin-input.ts';
import { bearerMatches } from './auth.ts';
import type { RegistryDeps } from './deps.ts';

const Name = z.string().trim().min(1).max(200);
const ScopeName = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/, 'a scope-token (RFC 6749 §3.3)');
const Username = z.string().regex(/^[A-Za-z0-9._@-]{1,100}$/, 'letters, digits and . _ @ -');
const Password = z.string().min(8).max(1_000);

/** `/admin`: organisations, users, the scope catalogue and client administration, with RFC 7807 errors. */
export const adminRouter = (deps: RegistryDeps): Router => {
  const router = Router();
  router.use((req, res, next) => {
    if (bearerMatches(req, deps.adminTokenDigest)) return next();
    res.set('WWW-Authenticate', 'Bearer realm="grantline-admin"');
    problem(res, 401, 'Unauthorized', 'a valid admin bearer token is required');
  });
  router.use(express.json({ limit: '64kb' }));

  const exists = async (stream: string) => (await deps.store.readStream(stream)).currentVersion > 0;

  router.post(
    '/organisations',
    wrap(async (req, res) => {
      const { name } = parse(z.object({ name: Name }), req.body);
      const organisationId = `org_${randomToken(12)}`;
      await handleCommand(
        deps.store,
        streams.organisation(organisationId),
        { organisationId, name },
        organisationDecider,
      );
      res.status(201).json({ id: organisationId, name });
    }),
  );

  router.post(
    '/users',
    wrap(async (req, res) => {
      const input = parse(
        z.object({
          username: Username,
          password: Password,
          organisations: z.array(z.string()).max(100).default([]),
        }),
        req.body,
      );
      for (const org of input.organisations) {
        if (!(await exists(streams.organisation(org))))
          throw new BadInput(`organisations: unknown organisation ${org}`);
      }
      const userId = `usr_${randomToken(12)}`;
      const sealedPasswordHash = await deps.sealPassword(input.password);
      try {
        // the username claim and the user commit together: a taken username creates nothing
        await deps.store.transaction(async (tx) => {
          await tx.append(streams.username(input.username), 'no_stream', [
            { type: 'UsernameClaimed', data: { username: input.username.toLowerCase(), userId } },
          ]);
          await handleCommand(
            tx,
            streams.user(userId),
            {
              type: 'Create',
              userId,
              username: input.username,
              sealedPasswordHash,
              organisations: input.organisations,
            },
            userDecider,
            { attempts: 1 },
          );
        });
      } catch (error) {
        if (error instanceof ConcurrencyError) return problem(res, 409, 'Conflict', 'username is taken');
        throw error;
      }
      res.status(201).json({ id: userId, username: input.username, organisations: input.organisations });
    }),
  );

  router.post(
    '/users/:id/organisations',
    wrap(async (req, res) => {
      const { organisation_id } = parse(z.object({ organisation_id: z.string().min(1) }), req.body);
      if (!(await exists(streams.organisation(organisation_id))))
        throw new BadInput(`organisation_id: unknown organisation`);
      await handleCommand(
        deps.store,
        streams.user(String(req.params.id)),
        { type: 'AddToOrganisation', organisationId: organisation_id },
        userDecider,
      );
      res.status(204).end();
    }),
  );

  router.delete(
    '/users/:id/organisations/:organisationId',
    wrap(async (req, res) => {
      const organisationId = String(req.params.organisationId);
      await handleCommand(
        deps.store,
        streams.user(String(req.params.id)),
        { type: 'RemoveFromOrganisation', organisationId },
        userDecider,
      );
      res.status(204).end();
    }),
  );

  router.post(
    '/users/:id/disable',
    wrap(async (req, res) => {
      await handleCommand(deps.store, streams.user(String(req.params.id)), { type: 'Disable' }, userDecider);
      res.status(204).end();
    }),
  );

  router.post(
    '/users/:id/password',
    wrap(async (req, res) => {
      const { password } = parse(z.object({ password: Password }), req.body);
      await handleCommand(
        deps.store,
        streams.user(String(req.params.id)),
        { type: 'ChangePassword', sealedPasswordHash: await deps.sealPassword(password) },
        userDecider,
      );
      res.status(204).end();
    }),
  );

  router.post(
    '/scopes',
    wrap(async (req, res) => {
      const input = parse(
        z.object({ name: ScopeName, description: z.string().trim().min(1).max(500) }),
        req.body,
      );
      await handleCommand(deps.store, streams.scope(input.name), input, scopeDecider);
      res.status(201).json(input);
    }),
  );

  clientAdminRoutes(router, deps);
  initialAccessTokenRoutes(router, deps);

  router.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (error instanceof BadInput) return problem(res, 400, 'Bad Request', error.message);
    if (error instanceof InitialAccessTokenNotFound) return problem(res, 404, 'Not Found', error.message);
    // client metadata is checked as in RFC 7591; its error code travels as an extension member
    if (error instanceof OAuthError)
      return problem(res, 400, 'Bad Request', error.message, { error: error.error });
    if (error instanceof ConcurrencyError)
      return problem(res, 409, 'Conflict', 'the resource changed concurrently; retry');
    if (error instanceof DirectoryRuleViolation || error instanceof ClientRuleViolation) {
      const status = {
        exists: 409,
        not_found: 404,
        gone: 404,
        disabled: 409,
        no_secret: 409,
        widening: 400,
        not_a_resource_server: 409,
      }[error.kind];
      return problem(
        res,
        status,
        status === 404 ? 'Not Found' : status === 409 ? 'Conflict' : 'Bad Request',
        error.message,
      );
    }
    next(error);
  });
  return router;
};
