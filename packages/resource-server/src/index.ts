import type { RequestHandler, Response } from 'express';
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';

/** The claims a Grantline access token carries (RFC 9068 plus `grant_id` and `organisations`). */
export interface GrantlineAccessToken extends JWTPayload {
  sub: string;
  client_id: string;
  scope?: string;
  grant_id?: string;
  organisations?: string[];
}

export interface ResourceServerOptions {
  /** the authorization server's issuer, compared exactly with `iss` */
  issuer: string;
  /** this resource server's identifier: tokens for other audiences are refused (RFC 9700 §2.3) */
  audience: string;
  /** where the signing keys are; refetched on an unknown `kid` (key rotation), at most once per cooldown */
  jwksUri: string;
  /** the least time between two JWKS fetches, seconds (default 30): a flood of unknown `kid`s costs one */
  jwksCooldownSeconds?: number;
  /** clock skew tolerated on `exp`/`nbf` against the authorization server's clock, seconds (default 5) */
  clockToleranceSeconds?: number;
  /** this server's clock (default: the system clock) */
  now?: () => Date;
}

const challenge = (res: Response, status: number, error: string, description: string, scope?: string) => {
  const params = [
    `error="${error}"`,
    `error_description="${description}"`,
    ...(scope ? [`scope="${scope}"`] : []),
  ];
  res
    .status(status)
    .set('WWW-Authenticate', `Bearer ${params.join(', ')}`)
    .json({ error, error_description: description });
};

/**
 * Express middleware for a resource server (RFC 6750, RFC 9068 §4): the bearer token comes from the
 * Authorization header only (never the query string, RFC 9700 §2.1.2), is verified against the
 * issuer's JWKS (`typ: at+jwt`, ES256, issuer, audience, expiry) and lands in `res.locals.token`.
 * The revocation issue adds the deny-list check here.
 */
export const requireAccessToken = (options: ResourceServerOptions): RequestHandler => {
  const keys: JWTVerifyGetKey = createRemoteJWKSet(new URL(options.jwksUri), {
    cooldownDuration: (options.jwksCooldownSeconds ?? 30) * 1000,
  });
  return async (req, res, next) => {
    const match = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/.exec(req.get('authorization') ?? '');
    if (!match)
      return challenge(res, 401, 'invalid_request', 'a bearer token in the Authorization header is required');
    try {
      const { payload } = await jwtVerify<GrantlineAccessToken>(match[1]!, keys, {
        issuer: options.issuer,
        audience: options.audience,
        typ: 'at+jwt',
        algorithms: ['ES256'],
        clockTolerance: options.clockToleranceSeconds ?? 5,
        ...(options.now && { currentDate: options.now() }),
        requiredClaims: ['sub', 'client_id', 'jti', 'exp', 'iat'],
      });
      res.locals.token = payload;
      next();
    } catch {
      challenge(res, 401, 'invalid_token', 'the access token is invalid or expired');
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
    challenge(res, 403, 'insufficient_scope', 'the access token lacks a required scope', scopes.join(' '));
  };

/** 403 unless the user connected the organisation named by route parameter `param` to this grant. */
export const requireOrganisation =
  (param = 'organisationId'): RequestHandler =>
  (req, res, next) => {
    const organisation = String(req.params[param] ?? '');
    if (organisation && tokenOf(res).organisations?.includes(organisation)) return next();
    challenge(res, 403, 'insufficient_scope', 'the organisation is not connected to this grant');
  };
