import type { FlowRequest } from '@grantline/flow';
import type { ClientRecord } from '@grantline/oauth';

/** A validated authorization request: the hand-off contract's, as it travels (signed) through login and consent. */
export type AuthorizationRequest = FlowRequest;

export type Prompt = FlowRequest['prompt'][number];

/** An error that may not be sent to the redirect URI (the client or the URI is not trusted). */
export class UntrustedRequest extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

/** An error that goes back to the validated redirect URI with `error`, `state` and `iss`. */
export class AuthorizationError extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

const LOOPBACK = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(?::(\d{1,5}))?(\/[^?#]*)?(\?[^#]*)?$/;

/**
 * RFC 9700 §4.1.3 / RFC 8252 §7.3: exact string comparison with a registered URI; for a loopback
 * http URI (a native app) only the port may differ.
 */
export const redirectUriMatches = (registered: string, requested: string): boolean => {
  if (registered === requested) return true;
  const r = LOOPBACK.exec(registered);
  const q = LOOPBACK.exec(requested);
  return (
    !!r &&
    !!q &&
    r[1] === q[1] &&
    Number(q[2] ?? 80) <= 65_535 &&
    (r[3] ?? '') === (q[3] ?? '') &&
    (r[4] ?? '') === (q[4] ?? '')
  );
};

type Params = Record<string, string | string[] | undefined>;

const single = (params: Params, name: string, trusted: boolean): string | undefined => {
  const value = params[name];
  if (Array.isArray(value)) {
    const message = `parameter ${name} is repeated`;
    throw trusted
      ? new AuthorizationError('invalid_request', message)
      : new UntrustedRequest('invalid_request', message);
  }
  return value === '' ? undefined : value;
};

/**
 * Step 1 (RFC 6749 §4.1.2.1): the client and its redirect URI. Until both are valid, nothing is
 * redirected anywhere.
 */
export const clientIdOf = (params: Params): string => {
  const clientId = single(params, 'client_id', false);
  if (!clientId) throw new UntrustedRequest('invalid_request', 'client_id is required');
  return clientId;
};

export const resolveRedirect = (
  params: Params,
  client: ClientRecord | undefined,
): { client: ClientRecord; redirectUri: string } => {
  if (client?.status !== 'active')
    throw new UntrustedRequest('invalid_client', 'the client is unknown or disabled');
  if (!client.grantTypes.includes('authorization_code'))
    throw new UntrustedRequest('unauthorized_client', 'the client may not use the authorization code grant');
  const requested = single(params, 'redirect_uri', false);
  if (requested === undefined) {
    // OAuth 2.1 §4.1.1: optional only when exactly one URI is registered
    if (client.redirectUris.length !== 1)
      throw new UntrustedRequest('invalid_request', 'redirect_uri is required');
    return { client, redirectUri: client.redirectUris[0]! };
  }
  if (!client.redirectUris.some((r) => redirectUriMatches(r, requested)))
    throw new UntrustedRequest('invalid_request', 'redirect_uri is not registered for this client');
  return { client, redirectUri: requested };
};

const CODE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
const GRANT_ID = /^[A-Za-z0-9_-]{10,100}$/;

/** Step 2: everything else; errors from here on go back to the client. */
export const validateRequest = (
  params: Params,
  client: ClientRecord,
  redirectUri: string,
): AuthorizationRequest => {
  const get = (name: string) => single(params, name, true);
  const state = single(params, 'state', true);
  // RFC 6749 Appendix A.5: state is VSCHAR; bounded so the redirects that carry it stay within header limits
  if (state !== undefined && !/^[\x20-\x7e]{1,2048}$/.test(state))
    throw new AuthorizationError('invalid_request', 'state must be at most 2048 printable ASCII characters');
  const responseType = get('response_type');
  if (responseType !== 'code')
    throw new AuthorizationError(
      responseType ? 'unsupported_response_type' : 'invalid_request',
      responseType ? 'only response_type=code is supported' : 'response_type is required',
    );
  for (const p of ['request', 'request_uri'])
    if (get(p) !== undefined) throw new AuthorizationError(`${p}_not_supported`, `${p} is not supported`);

  const codeChallenge = get('code_challenge');
  if (!codeChallenge) throw new AuthorizationError('invalid_request', 'code_challenge is required (PKCE)');
  if (get('code_challenge_method') !== 'S256')
    throw new AuthorizationError('invalid_request', 'code_challenge_method must be S256');
  if (!CODE_CHALLENGE.test(codeChallenge))
    throw new AuthorizationError(
      'invalid_request',
      'code_challenge must be a base64url SHA-256 (43 characters)',
    );

  const scope = get('scope');
  const scopes = scope === undefined ? [...client.scopes] : [...new Set(scope.split(' ').filter(Boolean))];
  if (scope !== undefined && (scope.length > 2_000 || !scopes.every((s) => SCOPE_TOKEN.test(s))))
    throw new AuthorizationError('invalid_scope', 'scope is malformed');
  const refused = scopes.filter((s) => !client.scopes.includes(s));
  if (refused.length > 0)
    throw new AuthorizationError(
      'invalid_scope',
      `scope not allowed for this client: ${refused.join(' ')}`.slice(0, 300),
    );
  if (scopes.length === 0)
    throw new AuthorizationError('invalid_scope', 'no scope requested and none registered');

  const raw = params.resource;
  const resources = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  for (const r of resources)
    if (!client.resources.includes(r))
      throw new AuthorizationError('invalid_target', 'resource is not allowed for this client');

  const prompt = (get('prompt') ?? '').split(' ').filter(Boolean) as Prompt[];
  if (!prompt.every((p) => p === 'none' || p === 'login' || p === 'consent'))
    throw new AuthorizationError('invalid_request', 'prompt must be none, login or consent');
  if (prompt.includes('none') && prompt.length > 1)
    throw new AuthorizationError('invalid_request', 'prompt=none cannot be combined with other values');

  const action = get('grant_management_action');
  const grantId = get('grant_id');
  if (action !== undefined && action !== 'create' && action !== 'merge' && action !== 'replace')
    throw new AuthorizationError(
      'invalid_request',
      'grant_management_action must be create, merge or replace',
    );
  if ((action === 'merge' || action === 'replace') && !grantId)
    throw new AuthorizationError('invalid_request', `grant_management_action=${action} requires grant_id`);
  if (grantId !== undefined && (action === undefined || action === 'create'))
    throw new AuthorizationError(
      'invalid_request',
      'grant_id requires grant_management_action merge or replace',
    );
  if (grantId !== undefined && !GRANT_ID.test(grantId))
    throw new AuthorizationError('invalid_grant_id', 'grant_id is malformed');

  return {
    clientId: client.clientId,
    redirectUri,
    redirectUriGiven: single(params, 'redirect_uri', true) !== undefined,
    scopes,
    state,
    codeChallenge,
    resources: [...new Set(resources)],
    prompt: [...new Set(prompt)],
    grantManagementAction: action,
    grantId,
  };
};
