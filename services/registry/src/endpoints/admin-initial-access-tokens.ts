import { epochSeconds } from '@grantline/clock';
import { handleCommand } from '@grantline/event-store';
import { randomToken } from '@grantline/oauth';
import type { Router } from 'express';
import { z } from 'zod';
import { initialAccessTokensDecider, initialAccessTokensStream } from '../domain/initial-access-tokens.ts';
import { parse, wrap } from './admin-input.ts';
import { readInitialAccessTokens, sha256 } from './auth.ts';
import type { RegistryDeps } from './deps.ts';

/**
 * RFC 7591 initial access tokens, managed by an administrator: issued (the token is shown once, only
 * its digest is recorded), listed without secrets, and revoked one by one.
 */
export const initialAccessTokenRoutes = (router: Router, deps: RegistryDeps) => {
  router.post(
    '/initial-access-tokens',
    wrap(async (req, res) => {
      const { description } = parse(
        z.object({ description: z.string().trim().min(1).max(200).optional() }),
        req.body ?? {},
      );
      const tokenId = `iat_${randomToken(12)}`;
      const token = randomToken(32);
      const now = epochSeconds(deps.clock);
      await handleCommand(
        deps.store,
        initialAccessTokensStream,
        { type: 'Issue', tokenId, tokenDigest: sha256(token), ...(description && { description }), now },
        initialAccessTokensDecider,
      );
      res
        .status(201)
        .set('Cache-Control', 'no-store')
        .json({
          id: tokenId,
          initial_access_token: token,
          ...(description && { description }),
          issued_at: now,
        });
    }),
  );

  router.get(
    '/initial-access-tokens',
    wrap(async (_req, res) => {
      const tokens = await readInitialAccessTokens(deps.store);
      res.json({
        initial_access_tokens: tokens.map((t) => ({
          id: t.tokenId,
          ...(t.description && { description: t.description }),
          issued_at: t.issuedAt,
          status: t.revoked ? 'revoked' : 'active',
        })),
      });
    }),
  );

  router.delete(
    '/initial-access-tokens/:id',
    wrap(async (req, res) => {
      await handleCommand(
        deps.store,
        initialAccessTokensStream,
        { type: 'Revoke', tokenId: String(req.params.id) },
        initialAccessTokensDecider,
      );
      res.status(204).end();
    }),
  );
};
