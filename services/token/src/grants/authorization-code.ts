import { createHash } from 'node:crypto';
import type { Clock } from '@grantline/clock';
import { ConcurrencyError, type EventStore } from '@grantline/event-store';
import type { TokenEvent } from '@grantline/events';
import type { FlowKeys } from '@grantline/flow';
import { InvalidGrant, InvalidRequest, UnauthorizedClient } from '@grantline/oauth';
import { continueTrace, SPANS } from '@grantline/telemetry';
import { type AccessTokenIssuer, newTokenId } from '../issuer.ts';
import { audienceFor } from './audience.ts';
import type { Grant } from './grant.ts';
import { familyStream, newFamilyId, newRefreshToken, revokeFamily } from './refresh-tokens.ts';
import { refuseRevoked, type StandingReads } from './standing.ts';

/** RFC 7636 §4.1: 43 to 128 characters of [A-Za-z0-9-._~]. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;

const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

/**
 * RFC 6749 §4.1.3 with PKCE (RFC 7636) and OAuth 2.1 §4.1.3. Every check runs before the code is
 * spent, so a replay with bad parameters revokes nothing. The code is single-use: its redemption is
 * the first event of the code's own stream (expected version "no stream"), so of concurrent
 * redemptions on any number of instances exactly one wins. A second valid redemption revokes the
 * refresh tokens issued from the code and reports the access token for the deny-list. As with a
 * refresh (F10), the statement that records the redemption checks the grant and the admin's
 * revocations itself: a redemption racing a revocation records nothing and spends nothing.
 */
export const authorizationCodeGrant = (deps: {
  keys: FlowKeys;
  store: EventStore;
  /** the grant, the user and the admin's revocations the code names */
  standing: StandingReads;
  issue: AccessTokenIssuer;
  defaultAudience: string;
  accessTokenTtlSeconds: number;
  clock: Clock;
}): Grant => ({
  grantType: 'authorization_code',
  async handle({ client, form }) {
    if (!client.grantTypes.includes('authorization_code'))
      throw new UnauthorizedClient('client is not allowed the authorization_code grant');
    if (!form.code) throw new InvalidRequest('code is required');
    // sealed to this service and signed by the authorization service (nothing else can make one)
    const code = await deps.keys.decrypt(form.code);
    if (!code) throw new InvalidGrant('authorization code is invalid');
    // the flow's trace, recorded at /oauth2/authorize and sealed in the code: the redemption and the
    // events it appends continue it, linked to this request's own span (docs/adr/0003)
    return continueTrace(SPANS.codeRedemption, code.tp, async () => {
      if (code.exp < deps.clock.now() / 1000) throw new InvalidGrant('authorization code has expired');
      if (code.cid !== client.clientId)
        throw new InvalidGrant('authorization code was issued to another client');
      // RFC 6749 §4.1.3: required, and identical, if the authorization request included it
      if (form.redirect_uri === undefined && code.rs !== false)
        throw new InvalidRequest('redirect_uri is required');
      if (form.redirect_uri !== undefined && code.ruri !== form.redirect_uri)
        throw new InvalidGrant('redirect_uri does not match the authorization request');
      if (!form.code_verifier) throw new InvalidGrant('code_verifier is required');
      if (!VERIFIER.test(form.code_verifier) || s256(form.code_verifier) !== code.cc)
        throw new InvalidGrant('code_verifier does not match the code_challenge');
      const names = { grantId: code.gid, subject: code.sub, clientId: client.clientId };
      const { grant, user, revokedAt } = await deps.standing.of(names);
      const since = code.iat * 1000;
      refuseRevoked({ grantStatus: grant?.status, revokedAt }, since);
      if (user?.status === 'disabled') throw new InvalidGrant('the user is disabled');
      if (user?.credentialsChangedAt && user.credentialsChangedAt.getTime() > code.auth_time * 1000)
        throw new InvalidGrant('the user signed in before their password changed');
      // what the user still belongs to and the grant still reaches; what the client may still have
      const organisations = code.orgs.filter(
        (o) => (!user || user.organisations.includes(o)) && (!grant || grant.organisations.includes(o)),
      );
      if (organisations.length === 0) throw new InvalidGrant('no organisation of the grant is connected');
      const scopes = code.scp.filter((s) => client.scopes.includes(s));
      const audience = audienceFor(code.res, client.resources, deps.defaultAudience);

      const accessTokenId = newTokenId();
      const withRefresh = client.grantTypes.includes('refresh_token');
      const familyId = withRefresh ? newFamilyId() : undefined;
      const refresh = familyId ? newRefreshToken(familyId, 0) : undefined;
      const ids = { clientId: client.clientId, grantId: code.gid };
      const token = deps.issue.prepare({
        jti: accessTokenId,
        subject: code.sub,
        clientId: client.clientId,
        scopes,
        audience,
        grantType: 'authorization_code',
        grantId: code.gid,
        organisations,
      });
      const family: { streamId: string; event: TokenEvent }[] =
        familyId && refresh
          ? [
              {
                streamId: familyStream(familyId),
                event: {
                  type: 'RefreshTokenIssued',
                  data: {
                    familyId,
                    tokenId: `${familyId}.0`,
                    secretDigest: refresh.secretDigest,
                    ...ids,
                    subject: code.sub,
                    scopes,
                    organisations,
                    resources: code.res,
                    accessTokenId,
                    codeId: code.jti,
                    ...(code.sid && { sessionId: code.sid }),
                  },
                },
              },
            ]
          : [];
      // the code spent, the family begun and the access token recorded: one statement, one commit,
      // under F10's guard; the code stream's version 1 is unique, so of concurrent redemptions exactly
      // one is recorded
      try {
        await deps.store.append(
          `code-${code.jti}`,
          'no_stream',
          [
            {
              type: 'CodeRedeemed',
              data: {
                codeId: code.jti,
                ...ids,
                subject: code.sub,
                accessTokenId,
                ...(familyId && { familyId }),
              },
            },
          ],
          { newStreams: [...family, token.record], guard: deps.standing.stillGranted(names, since) },
        );
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
        await revokeRedemption(deps.store, code.jti, ids, deps.accessTokenTtlSeconds, deps.clock);
        throw new InvalidGrant('authorization code has already been used');
      }
      token.recorded();
      const response = token.response;
      return { ...response, grant_id: code.gid, ...(refresh && { refresh_token: refresh.token }) };
    });
  },
});

/** A spent code presented again: record it, and revoke the refresh token family it started. */
const revokeRedemption = async (
  store: EventStore,
  codeId: string,
  ids: { clientId: string; grantId: string },
  accessTokenTtlSeconds: number,
  clock: Clock,
) => {
  const { events } = await store.readStream<TokenEvent>(`code-${codeId}`);
  const redeemed = events.find((e) => e.type === 'CodeRedeemed')?.data as
    | Extract<TokenEvent, { type: 'CodeRedeemed' }>['data']
    | undefined;
  // a conflict with no redemption on record is not a replay (a new stream's id taken): spend nothing
  if (!redeemed) throw new Error(`code ${codeId}: the redemption conflicted, but the code is unspent`);
  await store.append(`code-${codeId}`, 'any', [
    {
      type: 'CodeReplayDetected',
      data: { codeId, ...ids, accessTokenIds: [redeemed.accessTokenId] },
    },
  ]);
  if (redeemed.familyId)
    await revokeFamily(store, redeemed.familyId, 'code_replay', accessTokenTtlSeconds, clock);
};
