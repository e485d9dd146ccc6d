/**
 * OAuth errors: a closed set, one class per RFC error code (RFC 6749 §5.2, RFC 7591 §3.2.2,
 * RFC 8707 §2, RFC 6750 §3.1). One boundary renders them; anything else is a `server_error`.
 */
export abstract class OAuthError extends Error {
  abstract readonly error: string;
  status: number = 400;
  /** extra response headers, e.g. WWW-Authenticate or Retry-After */
  headers: Record<string, string> = {};
  constructor(readonly description: string) {
    // RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E: no CR, LF, TAB, quote or backslash
    super(description.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, ' '));
  }
  toJSON(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.message };
  }
}

export class InvalidRequest extends OAuthError {
  readonly error = 'invalid_request';
}
export class InvalidClient extends OAuthError {
  readonly error = 'invalid_client';
  override status = 401;
}
export class InvalidGrant extends OAuthError {
  readonly error = 'invalid_grant';
}
export class UnauthorizedClient extends OAuthError {
  readonly error = 'unauthorized_client';
}
export class UnsupportedGrantType extends OAuthError {
  readonly error = 'unsupported_grant_type';
}
export class InvalidScope extends OAuthError {
  readonly error = 'invalid_scope';
}
export class InvalidTarget extends OAuthError {
  readonly error = 'invalid_target';
}
/** RFC 7009 §2.2.1: the server cannot revoke tokens of the presented type. */
export class UnsupportedTokenType extends OAuthError {
  readonly error = 'unsupported_token_type';
}
export class InvalidToken extends OAuthError {
  readonly error = 'invalid_token';
  override readonly status = 401;
}
export class InvalidRedirectUri extends OAuthError {
  readonly error = 'invalid_redirect_uri';
}
export class InvalidClientMetadata extends OAuthError {
  readonly error = 'invalid_client_metadata';
}
/**
 * A dependency (Postgres) is briefly unreachable: retriable, so 503 with `Retry-After` (RFC 9110
 * §15.6.4) under the error code RFC 6749 §4.1.2.1 defines for it.
 */
export class TemporarilyUnavailable extends OAuthError {
  readonly error = 'temporarily_unavailable';
  override readonly status = 503;
  override headers = { 'Retry-After': '1' };
}
export class ServerError extends OAuthError {
  readonly error = 'server_error';
  override readonly status = 500;
}
