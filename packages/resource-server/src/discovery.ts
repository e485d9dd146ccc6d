import { type RevocationTopicOptions, subscribeToRevocationTopic } from './kafka-subscriber.ts';
import { type RevocationSubscriber, subscribeToRevocationStream } from './subscriber.ts';
import type { ResourceServerOptions, StalenessPolicy } from './verifier.ts';

/** The RFC 8414 metadata members a resource server uses. */
export interface AuthorizationServerMetadata {
  issuer: string;
  jwks_uri: string;
  introspection_endpoint?: string;
}

/** RFC 8414 §3: `<issuer>/.well-known/oauth-authorization-server`, whose `issuer` must be the one asked for. */
export const discover = async (issuer: string): Promise<AuthorizationServerMetadata> => {
  const url = new URL('/.well-known/oauth-authorization-server', issuer);
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  const metadata = (await res.json()) as AuthorizationServerMetadata;
  if (metadata.issuer !== issuer) throw new Error(`${url} names issuer ${metadata.issuer}, not ${issuer}`);
  return metadata;
};

/** The revocation stream sits beside the introspection endpoint (`/oauth2/revocations/stream`). */
export const revocationStreamUrl = (metadata: AuthorizationServerMetadata): string => {
  if (!metadata.introspection_endpoint) throw new Error('the metadata lists no introspection_endpoint');
  return new URL('revocations/stream', metadata.introspection_endpoint).toString();
};

export interface ConnectOptions {
  issuer: string;
  audience: string;
  /** this resource server's client (a resource-server client of the authorization server) */
  clientId: string;
  clientSecret: string;
  policy?: StalenessPolicy;
  freshnessBudgetSeconds?: number;
  /** subscribe to `grantline.revocations.v1` on these brokers instead of the HTTP stream */
  kafka?: Omit<RevocationTopicOptions, 'now'>;
}

/**
 * Everything from the metadata: JWKS, the revocation stream (subscribed, and bootstrapped before
 * this resolves; or the revocations topic, given `kafka`) and, for the `introspect` policy, the
 * introspection endpoint.
 */
export const connectResourceServer = async (
  options: ConnectOptions,
): Promise<{ options: ResourceServerOptions; subscriber: RevocationSubscriber }> => {
  const metadata = await discover(options.issuer);
  const subscriber = options.kafka
    ? subscribeToRevocationTopic(options.kafka)
    : subscribeToRevocationStream({
        url: revocationStreamUrl(metadata),
        clientId: options.clientId,
        clientSecret: options.clientSecret,
      });
  try {
    await subscriber.ready();
  } catch (error) {
    await subscriber.close();
    throw error;
  }
  const policy = options.policy ?? 'fail-closed';
  return {
    subscriber,
    options: {
      issuer: metadata.issuer,
      audience: options.audience,
      jwksUri: metadata.jwks_uri,
      revocations: subscriber,
      policy,
      ...(options.freshnessBudgetSeconds !== undefined && {
        freshnessBudgetSeconds: options.freshnessBudgetSeconds,
      }),
      ...(policy === 'introspect' && {
        introspection: {
          endpoint: metadata.introspection_endpoint!,
          clientId: options.clientId,
          clientSecret: options.clientSecret,
        },
      }),
    },
  };
};
