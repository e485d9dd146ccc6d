// The invoices API, an example resource server on @grantline/resource-server: `pnpm example:resource-server`
// against a running Grantline (`pnpm start`, or `pnpm start:services` with GRANTLINE_ISSUER=http://127.0.0.1:8080).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  connectResourceServer,
  discover,
  type ResourceServerOptions,
  type RevocationSubscriber,
  requireAccessToken,
  type StalenessPolicy,
  SubscriptionRefused,
} from '@grantline/resource-server';
import express from 'express';
import { registerResourceServer } from './register.ts';

/** The API: `GET /organisations/:organisationId/invoices` needs `invoices.read` for that organisation. */
export const invoicesApi = (options: ResourceServerOptions) => {
  const app = express();
  app.get(
    '/organisations/:organisationId/invoices',
    requireAccessToken({ ...options, scopes: ['invoices.read'] }),
    (req, res) => {
      res.json({ organisation: req.params.organisationId, invoices: [{ id: 'INV-1', total: 42 }] });
    },
  );
  app.post(
    '/organisations/:organisationId/invoices',
    requireAccessToken({ ...options, scopes: ['invoices.write'] }),
    (_req, res) => {
      res.status(201).json({ id: 'INV-2' });
    },
  );
  return app;
};

export interface ExampleConfig {
  /** GRANTLINE_ISSUER: everything else is discovered from its metadata */
  issuer: string;
  /** GRANTLINE_MANAGEMENT_URL: the admin API, for registering (default: the issuer's port + 1000) */
  managementUrl: string;
  /** GRANTLINE_ADMIN_TOKEN: registers the API as a resource-server client when no credentials are given */
  adminToken?: string;
  /** GRANTLINE_CLIENT_ID / GRANTLINE_CLIENT_SECRET: this API's resource-server client, if registered already */
  clientId?: string;
  clientSecret?: string;
  /** GRANTLINE_REVOCATION_POLICY: `fail-closed` (default) or `introspect` when the deny-list is stale */
  policy: StalenessPolicy;
  /** KAFKA_BROKERS / KAFKA_TOPIC_PREFIX: subscribe to the revocations topic on Kafka; without, the HTTP stream */
  kafka?: { brokers: string[]; topicPrefix?: string };
  /** HOST / PORT: where the API listens (default 127.0.0.1:8090; 0 picks a free port) */
  host: string;
  port: number;
  /** PUBLIC_URL: the API's URL as clients call it, its audience (default http://HOST:PORT/) */
  publicUrl?: string;
}

export const configFromEnv = (env: NodeJS.ProcessEnv = process.env): ExampleConfig => {
  const issuer = env.GRANTLINE_ISSUER ?? 'http://localhost:4000';
  const management = new URL(issuer);
  management.port = String(Number(management.port || (management.protocol === 'https:' ? 443 : 80)) + 1000);
  const policy = env.GRANTLINE_REVOCATION_POLICY ?? 'fail-closed';
  if (policy !== 'fail-closed' && policy !== 'introspect')
    throw new Error('GRANTLINE_REVOCATION_POLICY must be fail-closed or introspect');
  return {
    issuer,
    managementUrl: env.GRANTLINE_MANAGEMENT_URL ?? management.origin,
    ...(env.GRANTLINE_ADMIN_TOKEN && { adminToken: env.GRANTLINE_ADMIN_TOKEN }),
    ...(env.GRANTLINE_CLIENT_ID && { clientId: env.GRANTLINE_CLIENT_ID }),
    ...(env.GRANTLINE_CLIENT_SECRET && { clientSecret: env.GRANTLINE_CLIENT_SECRET }),
    policy,
    ...(env.KAFKA_BROKERS && {
      kafka: {
        brokers: env.KAFKA_BROKERS.split(',').map((b) => b.trim()),
        ...(env.KAFKA_TOPIC_PREFIX && { topicPrefix: env.KAFKA_TOPIC_PREFIX }),
      },
    }),
    host: env.HOST ?? '127.0.0.1',
    port: Number(env.PORT ?? 8090),
    ...(env.PUBLIC_URL && { publicUrl: env.PUBLIC_URL }),
  };
};

/** A client just registered reaches the introspection service through its projection: allow it a moment. */
const connectWithin = async (connect: () => ReturnType<typeof connectResourceServer>, ms: number) => {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await connect();
    } catch (error) {
      if (!(error instanceof SubscriptionRefused) || Date.now() > until) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
};

/**
 * Listens (its URL is its audience), registers itself if it has no credentials, subscribes to the
 * revocation stream and resolves once the deny-list is bootstrapped.
 */
export const startInvoicesApi = async (
  config: ExampleConfig,
): Promise<{
  url: string;
  clientId: string;
  clientSecret: string;
  /** what the API's middleware was built with (discovered; the subscriber's deny-list) */
  options: ResourceServerOptions;
  subscriber: RevocationSubscriber;
  stop: () => Promise<void>;
}> => {
  const server: Server = createServer();
  await new Promise<void>((ok, fail) =>
    server.once('error', fail).listen(config.port, config.host, () => ok()),
  );
  const url = config.publicUrl ?? `http://${config.host}:${(server.address() as AddressInfo).port}/`;
  try {
    let credentials =
      config.clientId && config.clientSecret
        ? { clientId: config.clientId, clientSecret: config.clientSecret }
        : undefined;
    if (!credentials) {
      if (!config.adminToken)
        throw new Error(
          'set GRANTLINE_CLIENT_ID and GRANTLINE_CLIENT_SECRET, or GRANTLINE_ADMIN_TOKEN to register',
        );
      const metadata = (await discover(config.issuer)) as { registration_endpoint?: string };
      if (!metadata.registration_endpoint) throw new Error('the metadata lists no registration_endpoint');
      credentials = await registerResourceServer({
        registrationEndpoint: metadata.registration_endpoint,
        managementUrl: config.managementUrl,
        adminToken: config.adminToken,
        resource: url,
      });
    }
    const { clientId, clientSecret } = credentials;
    const { options, subscriber } = await connectWithin(
      () =>
        connectResourceServer({
          issuer: config.issuer,
          audience: url,
          clientId,
          clientSecret,
          policy: config.policy,
          ...(config.kafka && { kafka: config.kafka }),
        }),
      30_000,
    );
    server.on('request', invoicesApi(options));
    return {
      url,
      clientId,
      clientSecret,
      options,
      subscriber,
      stop: async () => {
        await subscriber.close();
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      },
    };
  } catch (error) {
    server.close();
    throw error;
  }
};
