import { startInvoicesApi } from '@grantline/example-resource-server';
import type { Infrastructure } from '@grantline/testing';
import { expect } from 'vitest';
import { ADMIN_TOKEN, type Stack } from './stack.ts';

export type InvoicesApi = Awaited<ReturnType<typeof startInvoicesApi>>;

/**
 * The example invoices API (examples/resource-server, in-process on the SDK) twice against `stack`:
 * one instance following the HTTP revocation stream (SSE), one subscribed to
 * grantline.revocations.v1 on Kafka. Each registers itself as a resource-server client and resolves
 * once its deny-list is bootstrapped. A tenant's app needs both URLs among its resources.
 */
export const startInvoicesApis = async (stack: Stack, infra: Infrastructure) => {
  const config = {
    issuer: stack.issuer,
    managementUrl: stack.registryManagementUrl,
    adminToken: ADMIN_TOKEN,
    policy: 'fail-closed',
    host: '127.0.0.1',
    port: 0,
  } as const;
  const stream = await startInvoicesApi(config);
  const kafka = await startInvoicesApi({
    ...config,
    kafka: { brokers: infra.kafkaBrokers, topicPrefix: stack.topicPrefix },
  });
  return {
    stream,
    kafka,
    stop: async () => {
      await stream.stop();
      await kafka.stop();
    },
  };
};

/** GET /organisations/:organisationId/invoices on `at` with `token`. */
export const invoices = (at: InvoicesApi, token: string, organisation: string) =>
  fetch(`${at.url}organisations/${organisation}/invoices`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(5_000),
  });

/**
 * Polls `at` every 20 ms until it answers 401 invalid_token (RFC 6750) for `token` in
 * `organisation`; until then it must still serve (200). Resolves with the time (`Date.now()`) the
 * first 401 arrived; fails once `deadline` has passed without one.
 */
export const rejectedBy = async (at: InvoicesApi, token: string, organisation: string, deadline: number) => {
  for (;;) {
    const res = await invoices(at, token, organisation);
    if (res.status === 401) {
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
      return Date.now();
    }
    expect(res.status).toBe(200);
    if (Date.now() > deadline) throw new Error(`${at.url} still served after the deadline`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** The milliseconds from now until `at` rejects `token` in `organisation`, at most `budgetMs`. */
export const rejectedWithin = async (
  at: InvoicesApi,
  token: string,
  organisation: string,
  budgetMs = 1_000,
) => {
  const started = Date.now();
  const ms = (await rejectedBy(at, token, organisation, started + budgetMs)) - started;
  expect(ms).toBeLessThan(budgetMs);
  return ms;
};
