import type { IncomingMessage } from 'node:http';
import { isConnectionError, isRetriable } from '@grantline/event-store';
import type { Logger } from '@grantline/telemetry';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import typeis from 'type-is';
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
const readBody = (req: IncomingMessage, limit: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
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

const FORM_TYPE = 'application/x-www-form-urlencoded';

/**
 * Whether the request carries a form body, as type-is answers express's `req.is` (a request without a
 * body has no content type; parameters and letter case do not matter): the exact type most clients
 * send is told at once, anything else goes to type-is.
 */
const isForm = (req: IncomingMessage): boolean => {
  const type = req.headers['content-type'];
  if (type === FORM_TYPE)
    return (
      req.headers['transfer-encoding'] !== undefined || !Number.isNaN(Number(req.headers['content-length']))
    );
  return Boolean(typeis(req, [FORM_TYPE]));
};

export interface ParsedForm {
  /** single-valued parameters; an empty value is absent */
  form: Record<string, string>;
  /** the repeatable parameters' values */
  lists: Record<string, string[]>;
}

/**
 * Reads and parses an `application/x-www-form-urlencoded` body (at most 16 KiB, 100 parameters) into
 * single values. Any other content type is `invalid_request`; a repeated parameter is
 * `invalid_request` (OAuth 2.1 §3.2) unless listed as repeatable (RFC 8707 `resource`); an oversized
 * body is 413. Express routes use it through `parseForm`, the protocol routes on `node:http` directly.
 */
export const readForm = async (
  req: IncomingMessage,
  repeatable: readonly string[] = [],
): Promise<ParsedForm> => {
  if (!isForm(req)) throw new InvalidRequest('the request body must be application/x-www-form-urlencoded');
  const body = await readBody(req, FORM_LIMIT);
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
  return { form, lists };
};

/** `readForm` as express middleware: the result in `res.locals` (`formOf`, `listOf`). */
export const parseForm =
  (repeatable: readonly string[] = []): RequestHandler =>
  (req, res, next) => {
    readForm(req, repeatable)
      .then(({ form, lists }) => {
        res.locals.form = form;
        res.locals.lists = lists;
        next();
      })
      .catch(next);
  };

export const formOf = (res: Response): Record<string, string> => res.locals.form as Record<string, string>;
export const listOf = (res: Response, name: string): string[] =>
  (res.locals.lists as Record<string, string[]>)[name] ?? [];

/** An OAuth error as it goes on the wire: status, headers and JSON body. */
export interface OAuthErrorReply {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/**
 * How every OAuth error is answered (RFC 6749 §5.2): an OAuth error as itself, an oversized body 413,
 * a malformed one `invalid_request`, an unreachable database a retriable 503
 * `temporarily_unavailable`, anything else unexpected a generic `server_error` (logged, never shown).
 */
export const oauthErrorReply = (error: unknown, logger: Pick<Logger, 'error' | 'warn'>): OAuthErrorReply => {
  let oauth: OAuthError;
  if (error instanceof OAuthError) oauth = error;
  else if ((error as { type?: string } | undefined)?.type === 'entity.too.large')
    return {
      status: 413,
      headers: { 'Cache-Control': 'no-store' },
      body: { error: 'invalid_request', error_description: 'request body too large' },
    };
  else if ((error as { status?: number }).status === 400)
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
  return { status: oauth.status, headers: oauth.headers, body: oauth.toJSON() };
};

/** The express boundary that renders OAuth errors (`oauthErrorReply`). */
export const oauthErrorBoundary =
  (logger: Pick<Logger, 'error' | 'warn'>) =>
  (error: unknown, _req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const reply = oauthErrorReply(error, logger);
    res.status(reply.status).set(reply.headers).json(reply.body);
  };

/** Runs an async handler, forwarding its rejection to the error boundary. */
export const handle =
  (fn: (req: Request, res: Response) => Promise<void>): RequestHandler =>
  (req, res, next) => {
    fn(req, res).catch(next);
  };
