import { TOPICS } from '@grantline/events';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  Agent,
  authorizationRequest,
  createTenant,
  loginPage,
  redeem,
  refresh,
  runFlow,
  submitLogin,
  type Tenant,
} from './flow.ts';
import { type Stack, startStack } from './stack.ts';

/**
 * Every step an auditor cares about is an event on the public topics: sign-ins (and failures),
 * grants created / merged / replaced, organisations connected, codes redeemed, refresh tokens
 * rotated and reused.
 */
describe('audit trail on Kafka', () => {
  let stack: Stack;
  let tenant: Tenant;
  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    tenant = await createTenant(stack);
  }, 120_000);
  afterAll(() => stack?.stop());

  it('publishes the user authorization steps to grantline.grants.v1 and grantline.tokens.v1', async () => {
    // a failed sign-in, then a flow that creates a grant, merges into it and replaces it
    const agent = new Agent();
    const login = await loginPage(agent, authorizationRequest(stack, tenant));
    await submitLogin(stack, agent, login, { username: tenant.user.username, password: 'not the password' });
    const created = await runFlow(stack, tenant, {
      params: { grant_management_action: 'create', scope: 'invoices.read' },
    });
    const tokens = (await redeem(stack, tenant, created.code!, created.verifier)).body;
    const grantId = tokens.grant_id as string;
    const merged = await runFlow(stack, tenant, {
      agent: created.agent,
      params: {
        grant_management_action: 'merge',
        grant_id: grantId,
        scope: 'invoices.write',
        prompt: 'consent',
      },
      organisations: [tenant.organisations[2]!.id],
    });
    expect(merged.code).toBeTruthy();
    const replaced = await runFlow(stack, tenant, {
      agent: created.agent,
      params: { grant_management_action: 'replace', grant_id: grantId, scope: 'invoices.read' },
      organisations: [tenant.organisations[0]!.id],
    });
    expect((await redeem(stack, tenant, replaced.code!, replaced.verifier)).body.grant_id).toBe(grantId);
    const rotated = await refresh(stack, tenant, tokens.refresh_token as string);
    expect(rotated.status).toBe(200);
    expect((await refresh(stack, tenant, tokens.refresh_token as string)).body.error).toBe('invalid_grant');

    const kafka = new Kafka({ brokers: inject('infra').kafkaBrokers, logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `${stack.topicPrefix}audit` });
    const seen = new Map<string, string[]>();
    await consumer.connect();
    await consumer.subscribe({
      topics: [`${stack.topicPrefix}${TOPICS.grants}`, `${stack.topicPrefix}${TOPICS.tokens}`],
      fromBeginning: true,
    });
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        const type = message.headers?.ce_type?.toString() ?? '';
        seen.set(topic, [...(seen.get(topic) ?? []), type]);
      },
    });
    const expected = {
      [`${stack.topicPrefix}${TOPICS.grants}`]: [
        'UserAuthenticated',
        'LoginFailed',
        'GrantCreated',
        'GrantMerged',
        'GrantReplaced',
        'OrganisationConnected',
        'OrganisationDisconnected',
        'GrantRevoked',
      ],
      [`${stack.topicPrefix}${TOPICS.tokens}`]: [
        'CodeRedeemed',
        'RefreshTokenIssued',
        'AccessTokenIssued',
        'RefreshTokenRotated',
        'RefreshTokenReuseDetected',
        'RefreshFamilyRevoked',
      ],
    };
    try {
      await expect
        .poll(
          () =>
            Object.entries(expected).every(([topic, types]) =>
              types.every((t) => seen.get(topic)?.includes(`dev.grantline.${t}.v1`)),
            ),
          { timeout: 15_000, interval: 200 },
        )
        .toBe(true);
    } finally {
      await consumer.disconnect();
    }
    // a failed sign-in names the username's digest, never what was typed
    const failures = await stack.db.pool.query(
      `SELECT data::text FROM authz.events WHERE type = 'LoginFailed'`,
    );
    expect(failures.rows.map((r) => r.data).join()).not.toContain('not the password');
    expect(failures.rows.map((r) => r.data).join()).not.toContain(tenant.user.username);
  });
});
