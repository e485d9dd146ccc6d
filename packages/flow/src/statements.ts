/**
 * The statements that carry one authorization flow between services through the browser
 * (authorization -> consent -> authorization -> client -> token), with no call between services:
 * what each says, its JWS `typ`, and which key purpose signs it (packages/keys `KEY_PURPOSES`).
 */

/** The validated authorization request, as the authorization service signs it into its challenges. */
export interface FlowRequest {
  clientId: string;
  redirectUri: string;
  /** whether the request named `redirect_uri` (then the token request must repeat it) */
  redirectUriGiven: boolean;
  scopes: string[];
  state?: string | undefined;
  codeChallenge: string;
  resources: string[];
  prompt: ('none' | 'login' | 'consent')[];
  grantManagementAction?: 'create' | 'merge' | 'replace' | undefined;
  grantId?: string | undefined;
  /**
   * the W3C `traceparent` of the authorization request: later steps of the flow, which reach the
   * services through the browser without a trace context, continue this trace (docs/adr/0003)
   */
  traceparent?: string | undefined;
}

/** authorization -> its own sign-in page: the flow waiting for a user. */
export interface LoginChallenge {
  req: FlowRequest;
  jti: string;
}

/** The browser's sign-in (the session cookie), read by authorization and consent. */
export interface Session {
  sid: string;
  sub: string;
  /** when the user signed in (s, with millisecond precision) */
  auth_time: number;
}

/** authorization -> consent: the request to decide, bound to the session that signed in. */
export interface ConsentChallenge extends Session {
  req: FlowRequest;
  jti: string;
}

/** consent -> authorization: what the user decided, bound to the same session. */
export interface Verdict extends Session {
  req: FlowRequest;
  /** single use: the authorization service claims it on first use, until `exp` */
  jti: string;
  /** an error for the client: access_denied, consent_required, invalid_grant_id */
  error?: string;
  error_description?: string;
  grant_id?: string;
  scopes?: string[];
  organisations?: string[];
}

/** authorization -> token (through the client): the grant an authorization code stands for. */
export interface AuthorizationCode {
  jti: string;
  cid: string;
  ruri: string;
  /** whether the authorization request named its redirect_uri (else it must not be required here) */
  rs: boolean;
  cc: string;
  sub: string;
  gid: string;
  scp: string[];
  orgs: string[];
  res: string[];
  /** when the user signed in (s, with millisecond precision), and that sign-in's session id */
  auth_time: number;
  sid?: string;
  /** the flow's W3C `traceparent` (FlowRequest): the redemption continues the flow's trace */
  tp?: string;
}

/** JWS `typ` of each statement (RFC 8725 §3.11: explicit typing, so one cannot pass for another). */
export const STATEMENT = {
  login: 'grantline-login+jwt',
  consent: 'grantline-consent+jwt',
  session: 'grantline-session+jwt',
  verdict: 'grantline-verdict+jwt',
  code: 'grantline-code+jwt',
} as const;

export type StatementType = (typeof STATEMENT)[keyof typeof STATEMENT];

/**
 * How long each hand-off statement lives (s): long enough for a user to sign in or decide, short
 * enough that a leaked link soon means nothing. Sessions and codes are configured
 * (SESSION_TTL_SECONDS, AUTHORIZATION_CODE_TTL_SECONDS).
 */
export const STATEMENT_TTL_SECONDS = { login: 600, consent: 600, verdict: 60 } as const;

/** What each statement type carries. */
export interface StatementClaims {
  'grantline-login+jwt': LoginChallenge;
  'grantline-consent+jwt': ConsentChallenge;
  'grantline-session+jwt': Session;
  'grantline-verdict+jwt': Verdict;
  'grantline-code+jwt': AuthorizationCode;
}

/** Which key purpose signs each statement type: a verdict key can never make a session, nor the reverse. */
export const SIGNED_WITH = {
  'grantline-login+jwt': 'session',
  'grantline-consent+jwt': 'session',
  'grantline-session+jwt': 'session',
  'grantline-verdict+jwt': 'verdict',
  'grantline-code+jwt': 'codeSigning',
} as const satisfies Record<StatementType, 'session' | 'verdict' | 'codeSigning'>;

export type SigningPurpose = (typeof SIGNED_WITH)[StatementType];
