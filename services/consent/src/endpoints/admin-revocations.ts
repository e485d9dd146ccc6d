import { type EventStore, handleCommand } from '@grantline/event-store';
import { TOPICS, type WideRevocationEvent } from '@grantline/events';
import { bearerMatches, sha256Digest } from '@grantline/oauth';
import { problem, type Runtime } from '@grantline/service-kit';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type pg from 'pg';
import { grantDecider } from '../domain/grant.ts';

export interface AdminRevocationDeps {
  store: EventStore;
  pool: pg.Pool;
  schema: string;
  awaitProjected: Runtime['awaitProjected'];
  adminToken: string;
  /** how long an answer waits for every service projecting the grants topic to have applied it */
  visibilityTimeoutMs: number;
  /** whether the subject or client is one this service knows (its directory projection) */
  knownSubject: (subject: string) => Promise<boolean>;
  knownClient: (clientId: string) => Promise<boolean>;
}

type Target = {
  kind: 'subject' | 'client';
  /** the grants column naming it */
  column: 'subject' | 'client_id';
  stream: (id: string) => string;
  event: (id: string) => WideRevocationEvent;
};

const TARGETS = {
  subject: {
    kind: 'subject',
    column: 'subject',
    stream: (id) => `subject-revocation-${id}`,
    event: (subject) => ({ type: 'SubjectRevoked', data: { subject, reason: 'admin' } }),
  },
  client: {
    kind: 'client',
    column: 'client_id',
    stream: (id) => `client-revocation-${id}`,
    event: (clientId) => ({ type: 'ClientRevoked', data: { clientId, reason: 'admin' } }),
  },
} as const satisfies Record<string, Target>;

/** an event `Id`: printable ASCII without spaces, 1 to 200 characters */
const ID = /^[\x21-\x7e]{1,200}$/;

const unauthorized = (res: Response) => {
  res.set('WWW-Authenticate', 'Bearer realm="grantline-admin"');
  problem(res, 401, 'Unauthorized', 'a valid admin bearer token is required');
};

/**
 * Revokes everything of one subject (account deletion) or one client (a compromised app): the wide
 * fact first (`SubjectRevoked` / `ClientRevoked`: whatever of it began before now is dead, covering
 * grants not projected here yet and codes in flight), then `GrantRevoked` (reason `admin`) for
 * each of its active grants. Answers once every service projecting the grants topic has applied it
 * (bounded by the visibility timeout; `projected: false` says it was not), so after a 200 no
 * refresh or code redemption anywhere yields a token (README, F10). Repeating it is harmless.
 */
const revokeAll = (deps: AdminRevocationDeps, target: Target, param: string): RequestHandler[] => {
  const adminDigest = sha256Digest(deps.adminToken);
  const known = target.kind === 'subject' ? deps.knownSubject : deps.knownClient;
  return [
    async (req: Request, res: Response, next: NextFunction) => {
      if (!bearerMatches(req.get('authorization'), adminDigest)) return unauthorized(res);
      try {
        const id = String(req.params[param]);
        if (!ID.test(id))
          return void problem(res, 400, 'Bad Request', `${param}: printable ASCII, 1 to 200 characters`);
        const grantsOf = async () =>
          (
            await deps.pool.query<{ grant_id: string; status: string }>(
              `SELECT grant_id, status FROM ${deps.schema}.grants WHERE ${target.column} = $1`,
              [id],
            )
          ).rows;
        if ((await grantsOf()).length === 0 && !(await known(id)))
          return void problem(res, 404, 'Not Found', `unknown ${target.kind} ${id}`);
        const wide = await deps.store.append(target.stream(id), 'any', [target.event(id)]);
        // this service's own grants projection reads the same topic: once it has applied the wide
        // fact it holds every grant created before it, so none is left out of the list below
        await deps.awaitProjected(wide.lastPosition, TOPICS.grants, deps.visibilityTimeoutMs);
        let last = wide.lastPosition;
        const revoked: string[] = [];
        for (const { grant_id } of (await grantsOf()).filter((r) => r.status === 'active')) {
          const result = await handleCommand(
            deps.store,
            `grant-${grant_id}`,
            { type: 'Revoke', reason: 'admin' },
            grantDecider,
          );
          if (result.append) {
            last = result.append.lastPosition;
            revoked.push(grant_id);
          }
        }
        const projected = await deps.awaitProjected(last, TOPICS.grants, deps.visibilityTimeoutMs);
        res.status(200).json({
          [target.kind === 'subject' ? 'subject' : 'client_id']: id,
          revoked_at: wide.events[0]?.time,
          revoked_grants: revoked,
          projected,
        });
      } catch (error) {
        // the management app's error boundary logs it and answers a 500 problem without a stack
        next(error);
      }
    },
  ];
};

/** `POST /admin/revocations/subjects/:subject` and `POST /admin/revocations/clients/:client_id`. */
export const adminRevocations = (deps: AdminRevocationDeps) => ({
  subject: revokeAll(deps, TARGETS.subject, 'subject'),
  client: revokeAll(deps, TARGETS.client, 'client_id'),
});
