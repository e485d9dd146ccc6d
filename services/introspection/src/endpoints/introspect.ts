import { type Clock, epochSeconds } from '@grantline/clock';
import type { PrivateKeyEntry } from '@grantline/keys';
import {
  authenticateClient,
  type ClientAuthDeps,
  type FormEndpoint,
  type FormRequest,
  InvalidClient,
  InvalidRequest,
} from '@grantline/oauth';
import { SignJWT } from 'jose';
import { isConfidential, maySee } from '../access.ts';
import type { TokenInspector } from '../inspector.ts';

/** RFC 9701 §5: the media type a caller asks for with `Accept` to get a signed JWT response. */
export const INTROSPECTION_JWT = 'application/token-introspection+jwt';

const wantsJwt = (req: FormRequest) =>
  (req.get('accept') ?? '')
    .split(',')
    .some((type) => type.split(';')[0]!.trim().toLowerCase() === INTROSPECTION_JWT);

const INACTIVE = Object.freeze({ active: false });

/**
 * The JSON of an answer: an answer the inspector froze is shared by every request until the next
 * revocation, and serialised once.
 */
const serialised = new WeakMap<object, string>();
const json = (body: object): string => {
  if (!Object.isFrozen(body)) return JSON.stringify(body);
  const known = serialised.get(body);
  if (known !== undefined) return known;
  const text = JSON.stringify(body);
  serialised.set(body, text);
  return text;
};

/**
 * POST /oauth2/introspect (RFC 7662): client authentication as at the token endpoint; the token's
 * members for the client it was issued to or a resource server of its audience, and `{"active":
 * false}` with nothing else for anything else (unknown, expired, revoked, another audience).
 */
export const introspectEndpoint = (deps: {
  auth: ClientAuthDeps;
  inspect: TokenInspector;
  issuer: string;
  signingKey: PrivateKeyEntry;
  clock: Clock;
}): FormEndpoint => ({
  async handle(req) {
    const { form } = req;
    const caller = await authenticateClient(deps.auth, req, form);
    // RFC 7662 §2.1 and §4: only authenticated (confidential) callers; a public client proves nothing
    if (!isConfidential(caller)) throw new InvalidClient('introspection requires client authentication');
    if (!form.token) throw new InvalidRequest('token is required');
    const info = await deps.inspect(form.token, form.token_type_hint);
    const body = info && maySee(caller, info) ? info : INACTIVE;
    if (!wantsJwt(req)) return { body: json(body), type: 'application/json' };
    // RFC 9701 §5: iss, aud (the caller), iat and the introspection response as `token_introspection`
    const jwt = await new SignJWT({ token_introspection: body })
      .setProtectedHeader({ alg: 'ES256', typ: 'token-introspection+jwt', kid: deps.signingKey.kid })
      .setIssuer(deps.issuer)
      .setAudience(caller.clientId)
      .setIssuedAt(epochSeconds(deps.clock))
      .sign(deps.signingKey.privateKey);
    return { body: jwt, type: INTROSPECTION_JWT };
  },
});
