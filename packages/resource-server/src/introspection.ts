import { InvalidToken, RevocationStateUnavailable } from './errors.ts';

export interface IntrospectionOptions {
  /** the metadata's `introspection_endpoint` (RFC 7662) */
  endpoint: string;
  /** this resource server's client credentials (client_secret_basic) */
  clientId: string;
  clientSecret: string;
  /** the longest an introspection may take before the request is answered 503 (default 2,000 ms) */
  timeoutMs?: number;
}

export interface IntrospectionAnswer {
  active: boolean;
  organisations?: string[];
}

/**
 * RFC 7662 introspection, the fallback when the deny-list is stale. Nothing is cached (security.md
 * item 37): each call asks. `active: false` is `invalid_token`; a failure or timeout is 503.
 */
export const introspector = (options: IntrospectionOptions) => {
  const authorization = `Basic ${Buffer.from(
    `${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`,
  ).toString('base64')}`;
  return async (token: string): Promise<IntrospectionAnswer> => {
    let answer: IntrospectionAnswer;
    try {
      const res = await fetch(options.endpoint, {
        method: 'POST',
        headers: {
          authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 2_000),
      });
      if (res.status !== 200) throw new Error(`introspection answered ${res.status}`);
      answer = (await res.json()) as IntrospectionAnswer;
    } catch (cause) {
      throw new RevocationStateUnavailable(`revocation state unavailable: ${String(cause)}`, 1);
    }
    if (answer.active !== true) throw new InvalidToken('the access token is not active');
    return answer;
  };
};
