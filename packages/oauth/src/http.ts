import { isConnectionError, isRetriable } from '@grantline/event-store';
import type { Logger } from '@grantline/telemetry';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { InvalidRequest, OAuthError, ServerError, TemporarilyUnavailable } from './errors.ts';

/** RFC 6749 §5.1: token responses and errors are never cached. */
export const noStore: RequestHandler = (_req, res, next) => {
  res.set({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
  next();
};

const FORM_LIMIT = 16 * 1024;
const MAX_PARAMETERS = 100;

class BodyTooLarge extends Error {
  readonly type = 'entity.too.large';
}

/** Reads a request body up to `limit` bytes; past it, drains the rest and fails with 413. */
const readBody = (req: Request, limit: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const declared = Number(req.get('content-length') ?? 0);
    let size = 0;
    let tooLarge = declared > limit;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
    });
    req.on('end', () =>
      tooLarge
        ? reject(new BodyTooLarge('request body too large'))
        : resolve(Buffer.concat(chunks).toString('utf8')),
    );
    req.on('error', reject);
  });

/**
 * Parses an `application/x-www-form-urlencoded` body (at most 16 KiB, 100 parameters) into single
 * values. Any other content type is `invalid_request`; a repeated parameter is `invalid_request`
 * (OAuth 2.1 §3.2) unless listed as repeatable (RFC 8707 `resource`); an oversized body is 413.
 */
export const parseForm =
  (repeatable: readonly string[] = []): RequestHandler =>
  (req, res, next) => {
    if (!req.is('application/x-www-form-urlencoded')) {
      next(new InvalidRequest('the request body must be application/x-www-form-urlencoded'));
      return;
    }
    readBody(req, FORM_LIMIT)
      .then((body) => {
        const form: Record<string, string> = {};
        const lists: Record<string, string[]> = {};
        const seen = new Set<string>();
        let count = 0;
        for (const [key, value] of new URLSearchParams(body)) {
          if (++count > MAX_PARAMETERS) throw new InvalidRequest('too many parameters');
          if (repeatable.includes(key)) lists[key] = [...(lists[key] ?? []), value];
          else if (seen.has(key)) throw new InvalidRequest(`parameter ${key} is repeated`);
          else {
            seen.add(key);
            if (value !== '') form[key] = value;
          }
        }
        res.locals.form = form;
        res.locals.lists = lists;
        next();
      })
      .catch(next);
  };

export const formOf = (res: Response): Record<string, string> => res.locals.form as Record<string, string>;
export const listOf = (res: Response, name: string): string[] =>
  (res.locals.lists as Record<string, string[]>)[name] ?? [];

/**
 * The one boundary that renders OAuth errors (RFC 6749 §5.2): an unreachable database is a retriable
 * 503 `temporarily_unavailable`, anything else unexpected a generic `server_error`.
 */
export const oauthErrorBoundary =
  (logger: Pick<Logger, 'error' | 'warn'>) =>
  (error: unknown, _req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(error);
      return;
    }
    let oauth: OAuthError;
    if (error instanceof OAuthError) oauth = error;
    else if ((error as { type?: string }).type === 'entity.too.large') {
      res
        .status(413)
        .set('Cache-Control', 'no-store')
        .json({ error: 'invalid_request', error_description: 'request body too large' });
      return;
    } else if ((error as { status?: number }).status === 400)
      oauth = new InvalidRequest('malformed request body');
    else if (isConnectionError(error) || isRetriable(error)) {
      // Postgres restarting or failing over, or a write conflict that outlived its retries: the same
      // request may well succeed in a moment, so say so rather than answer server_error
      logger.warn({ err: error }, 'OAuth endpoint temporarily unavailable');
      oauth = new TemporarilyUnavailable('the service is temporarily unavailable; retry shortly');
    } else {
      logger.error({ err: error }, 'unexpected error in OAuth endpoint');
      oauth = new ServerError('the server could not handle the request');
    }
    res.status(oauth.status).set(oauth.headers).json(oauth.toJSON());
  };

/** Runs an async handler, forwarding its rejection to the error boundary. */
export const handle =
  (fn: (req: Request, res: Response) => Promise<void>): RequestHandler =>
  (req, res, next) => {
    fn(req, res).catch(next);
  };
