/** RFC 9068 §2.2 claims of a JWT access token. Pure: time and ids come in. */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  scope?: string;
  /** Grant Management: the grant this token was issued under */
  grant_id?: string;
  /** Grantline: the organisations the user connected to this grant */
  organisations?: string[];
}

export const accessTokenClaims = (input: {
  issuer: string;
  subject: string;
  clientId: string;
  audience: readonly string[];
  scopes: readonly string[];
  jti: string;
  now: number;
  ttlSeconds: number;
  grantId?: string | undefined;
  organisations?: readonly string[] | undefined;
}): AccessTokenClaims => ({
  iss: input.issuer,
  sub: input.subject,
  aud: input.audience.length === 1 ? input.audience[0]! : [...input.audience],
  exp: input.now + input.ttlSeconds,
  iat: input.now,
  jti: input.jti,
  client_id: input.clientId,
  ...(input.scopes.length > 0 && { scope: input.scopes.join(' ') }),
  ...(input.grantId !== undefined && { grant_id: input.grantId }),
  ...(input.organisations !== undefined && { organisations: [...input.organisations] }),
});
