import { context, propagation, trace } from '@opentelemetry/api';
import type { Request, RequestHandler, Response } from 'express';
import {
  BearerError,
  InsufficientScope,
  InvalidRequest,
  RevocationStateUnavailable,
  SigningKeysUnavailable,
} from './errors.ts';
import { createVerifier, type GrantlineAccessToken, type ResourceServerOptions } from './verifier.ts';

export * from './deny-list.ts';
export * from './discovery.ts';
export * from './errors.ts';
export * from './introspection.ts';
export * from './kafka-subscriber.ts';
export * from './subscriber.ts';
export { METRICS } from './telemetry.ts';
export * from './verifier.ts';

/** the header naming the organisation a request targets when its route does not (as Xero's tenant header) */
export const ORGANISATION_HEADER = 'Grantline-Organisation';

export interface MiddlewareOptions extends ResourceServerOptions {
  /** scopes every request needs */
  scopes?: readonly string[];
  /**
   * the route parameter naming the organisation a request targets (default `organisationId`); where
   * the route has none, the `Grantline-Organisation` header; where neither, no organisation check
   */
  organisation?: string;
}

const render = (res: Response, error: unknown) => {
  if (error instanceof RevocationStateUnavailable) {
    res
      .status(503)
      .set('Retry-After', String(error.retryAfterSeconds))
      .json({
        error: 'temporarily_unavailable',
        error_description:
          error instanceof SigningKeysUnavailable
            ? 'the signing keys are unavailable'
            : 'revocation state is not fresh',
      });
    return;
  }
  const e = error instanceof BearerError ? error : new InvalidRequest('the request could not be authorised');
  const params = [
    `error="${e.error}"`,
    `error_description="${e.message}"`,
    ...(e.scope ? [`scope="${e.scope}"`] : []),
  ];
  res
    .status(e.status)
    .set('WWW-Authenticate', `Bearer ${params.join(', ')}`)
    .json({ error: e.error, error_description: e.message });
};

const organisationOf = (req: Request, param: string): string | undefined => {
  const fromRoute = req.params?.[param];
  if (typeof fromRoute === 'string' && fromRoute) return fromRoute;
  return req.get(ORGANISATION_HEADER) || undefined;
};

/**
 * Express middleware for a resource server (RFC 6750, RFC 9068 §4): the bearer token comes from the
 * Authorization header only (never the query string, RFC 9700 §2.1.2), is verified (signature,
 * `typ: at+jwt`, ES256, issuer, audience, expiry), checked against the deny-list for the
 * organisation the request targets (or, when the deny-list is stale, by the declared policy), and
 * lands in `res.locals.token`. 401 `invalid_token`, 403 `insufficient_scope`, 503 + `Retry-After`.
 */
export const requireAccessToken = (options: MiddlewareOptions): RequestHandler => {
  const { verify } = createVerifier(options);
  const param = options.organisation ?? 'organisationId';
  return async (req, res, next) => {
    const match = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/.exec(req.get('authorization') ?? '');
    if (!match)
      return render(res, new InvalidRequest('a bearer token in the Authorization header is required'));
    try {
      const organisation = organisationOf(req, param);
      const check = () =>
        verify(match[1]!, {
          ...(organisation !== undefined && { organisation }),
          ...(options.scopes && { scopes: options.scopes }),
        });
      // an application without HTTP instrumentation has no active span: the caller's W3C trace
      // context (traceparent) is then the check's parent
      res.locals.token = await (trace.getActiveSpan()
        ? check()
        : context.with(propagation.extract(context.active(), req.headers), check));
      next();
    } catch (error) {
      render(res, error);
    }
  };
};

const tokenOf = (res: Response) => res.locals.token as GrantlineAccessToken;

/** 403 `insufficient_scope` unless the token holds every one of `scopes`. */
export const requireScopes =
  (...scopes: string[]): RequestHandler =>
  (_req, res, next) => {
    const held = new Set((tokenOf(res).scope ?? '').split(' '));
    if (scopes.every((s) => held.has(s))) return next();
    render(res, new InsufficientScope('the access token lacks a required scope', scopes.join(' ')));
  };

/** 403 unless the user connected the organisation named by route parameter `param` to this grant. */
export const requireOrganisation =
  (param = 'organisationId'): RequestHandler =>
  (req, res, next) => {
    const organisation = String(req.params[param] ?? '');
    if (organisation && tokenOf(res).organisations?.includes(organisation)) return next();
    render(res, new InsufficientScope('the organisation is not connected to this grant'));
  };
