/** RFC 6750 §3.1 errors a resource server answers with; one class per error code. */
export abstract class BearerError extends Error {
  abstract readonly status: number;
  abstract readonly error: string;
  /** the scope a 403 names (RFC 6750 §3) */
  readonly scope: string | undefined;
  constructor(description: string, scope?: string) {
    super(description);
    this.scope = scope;
  }
}

export class InvalidRequest extends BearerError {
  readonly status = 401;
  readonly error = 'invalid_request';
}

/** expired, revoked, malformed, or for another audience */
export class InvalidToken extends BearerError {
  readonly status = 401;
  readonly error = 'invalid_token';
}

export class InsufficientScope extends BearerError {
  readonly status = 403;
  readonly error = 'insufficient_scope';
}

/**
 * The revocation state is not fresh enough to decide and the policy is to fail closed (or
 * introspection failed too): 503 with `Retry-After`, never an answer that might honour a revoked token.
 */
export class RevocationStateUnavailable extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/**
 * The authorization server's signing keys could not be fetched (JWKS unreachable, timed out or not
 * 200): the token cannot be judged either way, so 503 with `Retry-After`, never 401 (which tells the
 * client its token is bad and makes it throw a good one away).
 */
export class SigningKeysUnavailable extends RevocationStateUnavailable {}
