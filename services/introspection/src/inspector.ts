import { createHash } from 'node:crypto';
import type { Clock } from '@grantline/clock';
import type { ClientRecord } from '@grantline/oauth';
import type { UserRecord } from '@grantline/registry-directory';
import { VerifiedTokenCache } from '@grantline/resource-server/verified-cache';
import { revocationKeys } from '@grantline/revocation-cache';
import { type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import type pg from 'pg';
import { familyKey } from './domain/facts.ts';
import { findFamily } from './projections/families.ts';

/** RFC 7662 §2.2 members of an active token (plus Grantline's `grant_id` and `organisations`). */
export interface TokenInfo {
  active: true;
  token_type: 'Bearer' | 'refresh_token';
  client_id: string;
  sub: string;
  scope?: string;
  aud?: string | string[];
  iss: string;
  exp: number;
  iat: number;
  jti?: string;
  grant_id?: string;
  organisations?: string[];
}

/** `<family id>.<generation>.<secret>` (the token service's format) */
const REFRESH_TOKEN = /^([A-Za-z0-9_-]{22})\.(\d{1,6})\.([A-Za-z0-9_-]{43})$/;

export interface InspectorDeps {
  issuer: string;
  /** the token service's public signing keys (its JWKS) */
  keys: JWTVerifyGetKey;
  /** the revocation facts (FactSet: from memory while it is live, else the table) */
  facts: { revoked(keys: readonly string[]): Promise<Map<string, Date>> };
  /** the registry's clients and users as this service projects them */
  clients: (clientId: string) => Promise<ClientRecord | undefined>;
  /** the registry's users (UserDirectory: cached, evicted by the projection's change notifications) */
  users: (userId: string) => Promise<UserRecord | undefined>;
  pool: pg.Pool;
  schema: string;
  refreshIdleSeconds: number;
  refreshMaxLifetimeSeconds: number;
  clock: Clock;
  /** how many verified access tokens to keep (their signature is not verified again until `exp`) */
  verifiedTokenCacheSize?: number;
}

/**
 * What a token is, from this service's own projections and facts only (never by asking another
 * service): undefined for anything not active (unknown, malformed, expired, revoked, of a disabled
 * or deleted client or a disabled user, or with no organisation left). Organisations disconnected from the token's grant are left out of the answer.
 */
export const tokenInspector = (deps: InspectorDeps) => {
  // ES256 verification is the costliest step of an access token's check: skipped for a token seen
  // before (until its exp), never the facts, the client and the user below
  const verified = new VerifiedTokenCache<JWTPayload>(deps.verifiedTokenCacheSize ?? 10_000, () =>
    deps.clock.now(),
  );
  /** the facts that deny this token, its grant, subject or client, or (organisations) each of its organisations */
  const denied = async (t: {
    /** when the token (an access token's `iat`) or its refresh family began */
    since: Date;
    jti?: string;
    familyId?: string;
    grantId?: string;
    sub: string;
    clientId: string;
    organisations?: string[];
  }) => {
    const orgKey = (o: string) => revocationKeys.grantOrganisation(t.grantId ?? '', o);
    const keys = [
      revocationKeys.subject(t.sub),
      revocationKeys.client(t.clientId),
      ...(t.jti ? [revocationKeys.token(t.jti)] : []),
      ...(t.familyId ? [familyKey(t.familyId)] : []),
      ...(t.grantId ? [revocationKeys.grant(t.grantId), ...(t.organisations ?? []).map(orgKey)] : []),
    ];
    const revoked = await deps.facts.revoked(keys);
    // everything of a subject or a client revoked by the admin: what began before; what the token
    // service issued after it (a new connection, new client credentials) stands, as it does there
    const wide = new Set([revocationKeys.subject(t.sub), revocationKeys.client(t.clientId)]);
    const whole = keys
      .filter((k) => !k.startsWith('grant-org:'))
      .some((k) => {
        const at = revoked.get(k);
        return at !== undefined && (!wide.has(k) || t.since.getTime() <= at.getTime());
      });
    const organisations = t.organisations?.filter((o) => !revoked.has(orgKey(o)));
    return { whole, organisations };
  };

  /**
   * The client still active, and a user subject neither disabled nor (for a refresh token issued at
   * `since`) with credentials changed after it: as the token service would refuse a refresh.
   */
  const partiesActive = async (clientId: string, subject: string, since?: Date) => {
    const [client, user] = await Promise.all([deps.clients(clientId), deps.users(subject)]);
    if (client?.status !== 'active') return false;
    if (!user) return true; // a client's own token (client credentials): its subject is the client
    if (user.status !== 'active') return false;
    return !(since && user.credentialsChangedAt && user.credentialsChangedAt > since);
  };

  const withOrganisations = (
    info: TokenInfo,
    had: string[] | undefined,
    left: string[] | undefined,
  ): TokenInfo | undefined => {
    if (!had || !left) return info;
    // a grant whose every organisation was disconnected grants nothing
    if (had.length > 0 && left.length === 0) return undefined;
    return { ...info, organisations: left };
  };

  const accessToken = async (token: string): Promise<TokenInfo | undefined> => {
    let claims = verified.get(token);
    if (!claims) {
      try {
        ({ payload: claims } = await jwtVerify(token, deps.keys, {
          issuer: deps.issuer,
          typ: 'at+jwt',
          algorithms: ['ES256'],
          requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
          currentDate: new Date(deps.clock.now()),
        }));
      } catch {
        return undefined;
      }
      verified.set(token, claims);
    }
    const c = claims as JWTPayload & {
      client_id: string;
      scope?: string;
      grant_id?: string;
      organisations?: string[];
    };
    const had = Array.isArray(c.organisations) ? c.organisations.map(String) : undefined;
    const { whole, organisations } = await denied({
      since: new Date(c.iat! * 1_000),
      jti: c.jti!,
      ...(c.grant_id !== undefined && { grantId: String(c.grant_id) }),
      sub: c.sub!,
      clientId: String(c.client_id),
      ...(had && { organisations: had }),
    });
    if (whole || !(await partiesActive(String(c.client_id), c.sub!))) return undefined;
    const info: TokenInfo = {
      active: true,
      token_type: 'Bearer',
      client_id: String(c.client_id),
      sub: c.sub!,
      ...(c.scope !== undefined && { scope: String(c.scope) }),
      ...(c.aud !== undefined && { aud: c.aud }),
      iss: c.iss!,
      exp: c.exp!,
      iat: c.iat!,
      jti: c.jti!,
      ...(c.grant_id !== undefined && { grant_id: String(c.grant_id) }),
    };
    return withOrganisations(info, had, organisations);
  };

  const refreshToken = async (token: string): Promise<TokenInfo | undefined> => {
    const match = REFRESH_TOKEN.exec(token);
    if (!match) return undefined;
    const [, familyId, generation, secret] = match as unknown as [string, string, string, string];
    const family = await findFamily(deps.pool, deps.schema, familyId);
    if (!family || family.tokenId !== `${familyId}.${generation}`) return undefined;
    const digest = createHash('sha256').update(secret).digest('base64url');
    if (digest !== family.secretDigest) return undefined;
    const now = deps.clock.now();
    const exp = Math.min(
      family.usedAt.getTime() + deps.refreshIdleSeconds * 1_000,
      family.issuedAt.getTime() + deps.refreshMaxLifetimeSeconds * 1_000,
    );
    if (exp <= now) return undefined;
    const { whole, organisations } = await denied({
      since: family.issuedAt,
      familyId,
      grantId: family.grantId,
      sub: family.subject,
      clientId: family.clientId,
      organisations: family.organisations,
    });
    if (whole || !(await partiesActive(family.clientId, family.subject, family.issuedAt))) return undefined;
    const info: TokenInfo = {
      active: true,
      token_type: 'refresh_token',
      client_id: family.clientId,
      sub: family.subject,
      ...(family.scopes.length > 0 && { scope: family.scopes.join(' ') }),
      ...(family.resources.length > 0 && { aud: family.resources }),
      iss: deps.issuer,
      exp: Math.floor(exp / 1_000),
      iat: Math.floor(family.usedAt.getTime() / 1_000),
      grant_id: family.grantId,
    };
    return withOrganisations(info, family.organisations, organisations);
  };

  /** RFC 7662 §2.1: the hint only says which kind to try first. */
  return async (token: string, hint?: string): Promise<TokenInfo | undefined> => {
    const order = hint === 'refresh_token' ? [refreshToken, accessToken] : [accessToken, refreshToken];
    for (const inspect of order) {
      const info = await inspect(token);
      if (info) return info;
    }
    return undefined;
  };
};

export type TokenInspector = ReturnType<typeof tokenInspector>;
