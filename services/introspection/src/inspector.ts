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
  aud?: string | readonly string[];
  iss: string;
  exp: number;
  iat: number;
  jti?: string;
  grant_id?: string;
  organisations?: readonly string[];
}

/** `<family id>.<generation>.<secret>` (the token service's format) */
const REFRESH_TOKEN = /^([A-Za-z0-9_-]{22})\.(\d{1,6})\.([A-Za-z0-9_-]{43})$/;

export interface InspectorDeps {
  issuer: string;
  /** the token service's public signing keys (its JWKS) */
  keys: JWTVerifyGetKey;
  /**
   * the revocation facts (FactSet: from memory while it is live, else the table); `version`, while
   * defined, changes with every fact added, so an answer derived at one version stands until it moves
   */
  facts: {
    revoked(keys: readonly string[]): Promise<Map<string, Date>>;
    readonly version?: number | undefined;
  };
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
 * The revocation keys a token stands on, derived once per token (for an access token, once per
 * verification): the subject's and the client's (which revoke only what began before them), the
 * token's own (its `jti` or refresh family, its grant: revoked whatever the time), and each
 * organisation's of its grant.
 */
interface Standing {
  /** when the token (an access token's `iat`) or its refresh family began, ms */
  sinceMs: number;
  subject: string;
  client: string;
  own: string[];
  organisations?: { id: string; key: string }[];
  /** every key above, as the facts are asked */
  keys: string[];
  /** the last answer and the facts' version it was derived at (see `judged`) */
  verdict?: Verdict;
}

/** a verified access token as the inspector keeps it (the cache hands out shallow copies) */
interface AccessTokenView {
  exp: number;
  /** its members, before the organisations the facts leave it (frozen: shared by every answer) */
  info: TokenInfo;
  /** the organisations it was issued for, if it names any */
  had: string[] | undefined;
  standing: Standing;
}

interface Verdict {
  version: number;
  /** the token, its grant, subject or client revoked */
  whole: boolean;
  /** the token's organisations still connected (undefined: it names none) */
  organisations: string[] | undefined;
  /** an access token's answer under this verdict, once it was asked for */
  shown?: { info: TokenInfo | undefined };
}

const freeze = <T>(value: T): T => (value === undefined ? value : Object.freeze(value));

const standing = (t: {
  sinceMs: number;
  jti?: string;
  familyId?: string;
  grantId?: string;
  sub: string;
  clientId: string;
  organisations?: string[];
}): Standing => {
  const subject = revocationKeys.subject(t.sub);
  const client = revocationKeys.client(t.clientId);
  const own = [
    ...(t.jti ? [revocationKeys.token(t.jti)] : []),
    ...(t.familyId ? [familyKey(t.familyId)] : []),
    ...(t.grantId ? [revocationKeys.grant(t.grantId)] : []),
  ];
  // organisations are the grant's: without a grant none can be disconnected
  const organisations = t.organisations?.map((id) => ({
    id,
    key: revocationKeys.grantOrganisation(t.grantId ?? '', id),
  }));
  const orgKeys = t.grantId ? (organisations ?? []).map((o) => o.key) : [];
  return {
    sinceMs: t.sinceMs,
    subject,
    client,
    own,
    ...(organisations && { organisations }),
    keys: [subject, client, ...own, ...orgKeys],
  };
};

/**
 * What a token is, from this service's own projections and facts only (never by asking another
 * service): undefined for anything not active (unknown, malformed, expired, revoked, of a disabled
 * or deleted client or a disabled user, or with no organisation left). Organisations disconnected from the token's grant are left out of the answer.
 */
export const tokenInspector = (deps: InspectorDeps) => {
  // ES256 verification is the costliest step of an access token's check: skipped for a token seen
  // before (until its exp); the facts are asked again whenever their version moves (`judged`), the
  // client and the user on every call. The cache hands out shallow copies of a view, so the view's
  // `standing` (and the verdict kept in it) is the one object every copy shares.
  const verified = new VerifiedTokenCache<AccessTokenView>(deps.verifiedTokenCacheSize ?? 10_000, () =>
    deps.clock.now(),
  );

  /** the facts that deny the token, its grant, subject or client, or (organisations) each of its organisations */
  const denied = async (s: Standing): Promise<Omit<Verdict, 'version'>> => {
    const revoked = await deps.facts.revoked(s.keys);
    // everything of a subject or a client revoked by the admin: what began before; what the token
    // service issued after it (a new connection, new client credentials) stands, as it does there
    const before = (key: string) => {
      const at = revoked.get(key);
      return at !== undefined && s.sinceMs <= at.getTime();
    };
    const whole = before(s.subject) || before(s.client) || s.own.some((key) => revoked.has(key));
    // (an organisation's key is only asked for a token of a grant: without one, none is revoked)
    const organisations = s.organisations?.filter((o) => !revoked.has(o.key)).map((o) => o.id);
    return { whole, organisations };
  };

  /**
   * `denied`, kept with the token while the facts' version stays: facts are only ever added, so a
   * revocation moves the version and the next check asks the facts again (a token presented again
   * costs no lookups until then). Read before the lookup, so a fact added during it moves it too.
   */
  const judged = async (s: Standing): Promise<Omit<Verdict, 'version'>> => {
    const version = deps.facts.version;
    if (version !== undefined && s.verdict?.version === version) return s.verdict;
    const verdict = await denied(s);
    if (version === undefined) return verdict;
    s.verdict = { version, ...verdict };
    return s.verdict;
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
    return { ...info, organisations: Object.freeze([...left]) };
  };

  /** a verified access token's answer, kept with its standing while its signature need not be checked again */
  const viewOf = (claims: JWTPayload): AccessTokenView => {
    const c = claims as JWTPayload & {
      client_id: string;
      scope?: string;
      grant_id?: string;
      organisations?: string[];
    };
    const had = Array.isArray(c.organisations) ? c.organisations.map(String) : undefined;
    const info: TokenInfo = Object.freeze({
      active: true,
      token_type: 'Bearer',
      client_id: String(c.client_id),
      sub: c.sub!,
      ...(c.scope !== undefined && { scope: String(c.scope) }),
      ...(c.aud !== undefined && { aud: Array.isArray(c.aud) ? Object.freeze([...c.aud]) : c.aud }),
      iss: c.iss!,
      exp: c.exp!,
      iat: c.iat!,
      jti: c.jti!,
      ...(c.grant_id !== undefined && { grant_id: String(c.grant_id) }),
    });
    return {
      exp: c.exp!,
      info,
      had,
      standing: standing({
        sinceMs: Math.floor(c.iat! * 1_000), // as a Date would hold it: whole milliseconds
        jti: c.jti!,
        ...(c.grant_id !== undefined && { grantId: String(c.grant_id) }),
        sub: c.sub!,
        clientId: info.client_id,
        ...(had && { organisations: had }),
      }),
    };
  };

  const accessToken = async (token: string): Promise<TokenInfo | undefined> => {
    let view = verified.get(token);
    if (!view) {
      try {
        const { payload } = await jwtVerify(token, deps.keys, {
          issuer: deps.issuer,
          typ: 'at+jwt',
          algorithms: ['ES256'],
          requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
          currentDate: new Date(deps.clock.now()),
        });
        view = viewOf(payload);
      } catch {
        return undefined;
      }
      verified.set(token, view);
    }
    const verdict = await judged(view.standing);
    if (verdict.whole || !(await partiesActive(view.info.client_id, view.info.sub))) return undefined;
    // built once per verdict, frozen: every answer until the next revocation shares it
    verdict.shown ??= { info: freeze(withOrganisations(view.info, view.had, verdict.organisations)) };
    return verdict.shown.info;
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
    const { whole, organisations } = await denied(
      standing({
        sinceMs: family.issuedAt.getTime(),
        familyId,
        grantId: family.grantId,
        sub: family.subject,
        clientId: family.clientId,
        organisations: family.organisations,
      }),
    );
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
