import { randomBytes } from 'node:crypto';
import { type Clock, epochSeconds } from '@grantline/clock';
import type { GroupCommit, StreamAppend } from '@grantline/event-store';
import type { TokenEvent } from '@grantline/events';
import type { KeyManager } from '@grantline/keys';
import { ATTRS, lazyInstruments, METRICS } from '@grantline/telemetry';
import { accessTokenClaims } from './domain/access-token.ts';

const issued = lazyInstruments('@grantline/token', (meter) =>
  meter.createCounter(METRICS.tokensIssued, { description: 'access tokens issued, by grant type' }),
);
// one attribute set per grant type, made once: no allocation per token on the hot path
const byGrantType = {
  client_credentials: { [ATTRS.grantType]: 'client_credentials' },
  authorization_code: { [ATTRS.grantType]: 'authorization_code' },
  refresh_token: { [ATTRS.grantType]: 'refresh_token' },
} as const;

/** Counts an access token once its event is recorded (the tokens-issued metric). */
export const countIssued = (grantType: IssueRequest['grantType']) => issued().add(1, byGrantType[grantType]);

export interface IssueRequest {
  subject: string;
  clientId: string;
  scopes: readonly string[];
  audience: readonly string[];
  grantType: 'client_credentials' | 'authorization_code' | 'refresh_token';
  /** chosen by the caller when it must record the id elsewhere first (a code redemption) */
  jti?: string;
  grantId?: string;
  organisations?: readonly string[];
}

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope?: string;
  refresh_token?: string;
  grant_id?: string;
}

/** A signed access token, and the `AccessTokenIssued` event that must be committed before it is handed out. */
export interface MintedAccessToken {
  response: TokenResponse;
  /** a new stream `access-token-<jti>` with its one event */
  record: StreamAppend<TokenEvent>;
}

/**
 * Signs RFC 9068 JWT access tokens and states the `AccessTokenIssued` event of each (claims and
 * jti, never the token). The caller records the event, alone or with its own events in one commit
 * (a rotation, a code redemption), before handing the token out.
 */
export const accessTokenMinter =
  (deps: { keys: KeyManager; issuer: string; ttlSeconds: number; clock: Clock }) =>
  (request: IssueRequest): MintedAccessToken => {
    const now = epochSeconds(deps.clock);
    const jti = request.jti ?? newTokenId();
    const claims = accessTokenClaims({
      ...request,
      issuer: deps.issuer,
      jti,
      now,
      ttlSeconds: deps.ttlSeconds,
    });
    const token = deps.keys.signingKey().sign({ typ: 'at+jwt' }, claims);
    const event: TokenEvent = {
      type: 'AccessTokenIssued',
      data: {
        jti,
        clientId: request.clientId,
        subject: request.subject,
        grantType: request.grantType,
        scopes: [...request.scopes],
        audience: [...request.audience],
        expiresAt: new Date(claims.exp * 1000).toISOString(),
        ...(request.grantId !== undefined && { grantId: request.grantId }),
        ...(request.organisations !== undefined && { organisations: [...request.organisations] }),
      },
    };
    return {
      response: {
        access_token: token,
        token_type: 'Bearer',
        expires_in: deps.ttlSeconds,
        ...(claims.scope && { scope: claims.scope }),
      },
      record: { streamId: `access-token-${jti}`, expected: 'no_stream', events: [event] },
    };
  };

export type AccessTokenMinter = ReturnType<typeof accessTokenMinter>;

/**
 * Issues an access token whose event is recorded on its own before it is handed out: no token
 * exists that the log does not know. Events of concurrent requests share one commit.
 */
export const accessTokenIssuer = (
  deps: Parameters<typeof accessTokenMinter>[0] & { events: GroupCommit },
) => {
  const mint = accessTokenMinter(deps);
  return async (request: IssueRequest): Promise<TokenResponse> => {
    const { response, record } = mint(request);
    await deps.events.append(record.streamId, record.events[0]!);
    countIssued(request.grantType);
    return response;
  };
};

/** 144 bits from the CSPRNG: access token ids. */
export const newTokenId = () => randomBytes(18).toString('base64url');

export type AccessTokenIssuer = ReturnType<typeof accessTokenIssuer>;
