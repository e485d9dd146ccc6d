import { type Clock, epochSeconds, systemClock } from '@grantline/clock';
import type { KeyValueStore } from '@grantline/key-value';
import type { Logger } from '@grantline/telemetry';
import { createLocalJWKSet, decodeJwt, type JWK, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { clientAddressKey } from './addresses.ts';
import { InvalidClient, InvalidRequest, OAuthError } from './errors.ts';
import { failureLimiter, jtiGuard } from './guards.ts';
import { type RemoteKeySets, remoteKeySets } from './remote-jwks.ts';
import { digestsEqual, randomToken, sha256Digest } from './secrets.ts';

export type AuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';

/** What the token-side services know of a client (their projection of the registry). */
export interface ClientRecord {
  clientId: string;
  clientName?: string | undefined;
  logoUri?: string | undefined;
  status: 'active' | 'disabled' | 'deleted';
  tokenEndpointAuthMethod: AuthMethod;
  secretDigest?: string | undefined;
  grantTypes: readonly string[];
  scopes: readonly string[];
  resources: readonly string[];
  /**
   * the audiences an administrator made this client a resource server for (it may introspect their
   * access tokens and read the revocation stream); empty or absent: none. Never self-declared.
   */
  servedResources?: readonly string[] | undefined;
  redirectUris: readonly string[];
  jwks?: { keys: JWK[] } | undefined;
  jwksUri?: string | undefined;
}

export interface ClientAuthDeps {
  /** the client, from a short-lived cache where there is one */
  lookup: (clientId: string) => Promise<ClientRecord | undefined>;
  /** the client past any cache (default: `lookup`) */
  lookupFresh?: (clientId: string) => Promise<ClientRecord | undefined>;
  /** records a `jti` until it expires; false when it was already used (RFC 7523 §3 item 7) */
  claimJti: (key: string, ttlSeconds: number) => Promise<boolean>;
  /** seconds this client id is locked out for from this address; 0 when it is not */
  lockedOutFor: (clientId: string, address: string) => number;
  /** counts a failed authentication from an address; returns the lock-out in seconds when it started one */
  recordFailure: (clientId: string, address: string) => Promise<number>;
  /** audiences a client assertion may name: the token endpoint URL and the issuer */
  assertionAudiences: readonly string[];
  /** the key sets of clients that publish theirs at a `jwks_uri` */
  remoteKeys: RemoteKeySets;
  /** what an assertion's `exp` is checked against (default: the system clock) */
  clock?: Clock;
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ASSERTION_ALGS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'];
const MAX_ASSERTION_LIFETIME_S = 300;
/** the clock skew allowed between a client and the server, as everywhere else */
const CLOCK_TOLERANCE_S = 30;
/**
 * Compared against when the client has no secret of its own (unknown, or registered without one), so
 * every failure costs the same; random per process, so no presented value can ever match it.
 */
const DUMMY_DIGEST = sha256Digest(randomToken(32));

const malformedBasic = () => new InvalidRequest('malformed Basic authorization header');

/** RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64. */
const formDecode = (s: string): string => {
  if (!s.includes('%') && !s.includes('+')) return s; // nothing encoded: most clients' ids and secrets
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw malformedBasic();
  }
};

const parseBasic = (header: string): { clientId: string; secret: string } => {
  const match = /^Basic ([A-Za-z0-9+/]+={0,2})$/.exec(header);
  const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
  const colon = decoded.indexOf(':');
  if (!match || colon <= 0) throw malformedBasic();
  return { clientId: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
};

/** What a request presents to prove its client: a secret (Basic or in the body) or an assertion. */
type Credential =
  | { kind: 'secret'; method: 'client_secret_basic' | 'client_secret_post'; secret: string }
  | { kind: 'assertion'; assertion: string };

/** Whether the credential proves `client`; false for a client that is unknown or authenticates otherwise. */
const proves = async (
  deps: ClientAuthDeps,
  credential: Credential,
  client: ClientRecord | undefined,
): Promise<boolean> => {
  try {
    if (credential.kind === 'assertion')
      return client ? await verifyAssertion(deps, client, credential.assertion) : false;
    const digest = client?.secretDigest;
    const ok = digestsEqual(sha256Digest(credential.secret), digest ?? DUMMY_DIGEST);
    // a client without a secret of its own fails every secret-based method, whatever is presented
    return ok && digest !== undefined && client?.tokenEndpointAuthMethod === credential.method;
  } catch (error) {
    if (error instanceof OAuthError && !(error instanceof InvalidClient)) throw error;
    return false;
  }
};

const failed = (basic: boolean, description = 'client authentication failed') => {
  const error = new InvalidClient(description);
  if (basic) error.headers['WWW-Authenticate'] = 'Basic realm="grantline"';
  return error;
};

/**
 * Authenticates the client of a token-endpoint-style request by exactly one method: Basic, secret in
 * the body, or a private_key_jwt assertion (RFC 7523). An unknown client and a wrong credential fail
 * alike (same status, body and timing). The credential is checked first, so a correct one is never
 * refused; failures count per (client id, source address) towards a lock-out of that pair (RFC 6749
 * §2.3.1), after which that address's failures are answered 429 with `Retry-After`.
 */
export const authenticateClient = async (
  deps: ClientAuthDeps,
  /** the request's headers and client address (an express request, or a `FormRequest`) */
  req: { get(name: string): string | undefined; ip?: string | undefined },
  form: Record<string, string>,
): Promise<ClientRecord> => {
  const authorization = req.get('authorization');
  const basic = authorization !== undefined;
  const methods =
    Number(basic) + Number(form.client_secret !== undefined) + Number(form.client_assertion !== undefined);
  if (methods > 1) throw new InvalidRequest('use exactly one client authentication method');
  if (basic && !authorization.startsWith('Basic '))
    throw new InvalidRequest('unsupported authorization scheme');

  let clientId: string | undefined;
  let credential: Credential;
  if (basic || form.client_secret !== undefined) {
    const credentials = basic
      ? parseBasic(authorization)
      : { clientId: form.client_id, secret: form.client_secret! };
    if (!credentials.clientId) throw new InvalidRequest('client_id is required');
    if (basic && form.client_id !== undefined && form.client_id !== credentials.clientId) {
      throw new InvalidRequest('client_id does not match the authorization header');
    }
    clientId = credentials.clientId;
    const method = basic ? 'client_secret_basic' : 'client_secret_post';
    credential = { kind: 'secret', method, secret: credentials.secret };
  } else if (form.client_assertion !== undefined) {
    if (form.client_assertion_type !== JWT_BEARER)
      throw new InvalidRequest(`client_assertion_type must be ${JWT_BEARER}`);
    let claims: ReturnType<typeof decodeJwt>;
    try {
      claims = decodeJwt(form.client_assertion);
    } catch {
      throw new InvalidRequest('client_assertion is not a JWT');
    }
    clientId = typeof claims.sub === 'string' ? claims.sub : undefined;
    if (!clientId) throw new InvalidRequest('client_assertion has no sub');
    if (form.client_id !== undefined && form.client_id !== clientId)
      throw new InvalidRequest('client_id does not match the assertion');
    credential = { kind: 'assertion', assertion: form.client_assertion };
  } else {
    // a public client (RFC 6749 §2.1) identifies itself with client_id alone; a confidential one may not
    const client = form.client_id ? await deps.lookup(form.client_id) : undefined;
    if (client?.tokenEndpointAuthMethod === 'none' && client.status === 'active') return client;
    throw failed(false, form.client_id ? 'client authentication is required' : 'no client authentication');
  }

  // The credential first: a correct one is never refused, whatever others sent from wherever (behind
  // a proxy every caller may share one address). Only failures meet the lock-out, per (client, address):
  // a guesser is answered 429 from then on, at no cost to the client (256-bit secrets and signed
  // assertions leave nothing to guess in any case).
  let client = await deps.lookup(clientId);
  let ok = await proves(deps, credential, client);
  // A failure against a cached client is checked once more against the projection: a cached copy
  // may be a moment old, and an unknown client, never cached, costs that read too, so a failure
  // takes as long for a known client as for an unknown one.
  if (!ok && client && deps.lookupFresh) {
    client = await deps.lookupFresh(clientId);
    ok = await proves(deps, credential, client);
  }
  if (ok && client?.status === 'active') return client;
  const address = clientAddressKey(req.ip ?? 'unknown');
  const locked = deps.lockedOutFor(clientId, address);
  if (locked > 0) throw tooManyFailures(locked);
  const lockout = await deps.recordFailure(clientId, address);
  if (lockout > 0) throw tooManyFailures(lockout);
  throw failed(basic);
};

const tooManyFailures = (seconds: number) => {
  const error = new InvalidClient('too many failed authentication attempts; try again later');
  error.status = 429;
  error.headers['Retry-After'] = String(Math.ceil(seconds));
  return error;
};

const verifyAssertion = async (
  deps: ClientAuthDeps,
  client: ClientRecord,
  assertion: string,
): Promise<boolean> => {
  if (client.tokenEndpointAuthMethod !== 'private_key_jwt') return false;
  let keys: JWTVerifyGetKey;
  if (client.jwks) keys = createLocalJWKSet(client.jwks);
  else if (client.jwksUri) keys = deps.remoteKeys(client.jwksUri);
  else return false;
  const clock = deps.clock ?? systemClock;
  const { payload } = await jwtVerify(assertion, keys, {
    currentDate: new Date(clock.now()),
    issuer: client.clientId,
    subject: client.clientId,
    audience: [...deps.assertionAudiences],
    algorithms: ASSERTION_ALGS,
    requiredClaims: ['exp', 'jti'],
    clockTolerance: CLOCK_TOLERANCE_S,
  });
  const now = epochSeconds(clock);
  const exp = payload.exp!;
  // bounded, so the jti record can expire with it; a client clock a little fast is not an error
  if (exp - now > MAX_ASSERTION_LIFETIME_S + CLOCK_TOLERANCE_S) return false;
  return deps.claimJti(`${client.clientId}:${payload.jti}`, exp - now + 60);
};

/**
 * Client authentication as every service that authenticates clients wires it (token, consent's
 * Grant Management, introspection): clients from a cached directory read past its cache on a
 * failure, client-assertion `jti`s claimed once per deployment, lock-outs counted per service,
 * `jwks_uri` fetched through the guarded fetcher.
 */
export const clientAuthentication = (options: {
  clients: {
    get(clientId: string): Promise<ClientRecord | undefined>;
    read(clientId: string): Promise<ClientRecord | undefined>;
  };
  kv: KeyValueStore;
  /** the deployment's prefix (`KAFKA_TOPIC_PREFIX`, '' when embedded) */
  deploymentPrefix: string;
  /** the service whose lock-out counters these are */
  service: string;
  failuresPerMinute: number;
  allowPrivateJwksUri: boolean;
  assertionAudiences: readonly string[];
  logger: Pick<Logger, 'warn'>;
  clock: Clock;
}): ClientAuthDeps => ({
  lookup: (id) => options.clients.get(id),
  lookupFresh: (id) => options.clients.read(id),
  claimJti: jtiGuard(options.kv, options.deploymentPrefix),
  ...failureLimiter(
    options.kv,
    `grantline:${options.deploymentPrefix}${options.service}:`,
    options.failuresPerMinute,
    options.logger,
  ),
  remoteKeys: remoteKeySets({ allowPrivateAddresses: options.allowPrivateJwksUri }),
  assertionAudiences: options.assertionAudiences,
  clock: options.clock,
});
