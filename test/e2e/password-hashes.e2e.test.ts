import { createHash, randomBytes } from 'node:crypto';
import { TOPICS } from '@grantline/events';
import { parsePublicKeys, seal } from '@grantline/keys';
import { hashPassword } from '@grantline/oauth';
import { eventually } from '@grantline/testing';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  Agent,
  authorizationRequest,
  createTenant,
  loginPage,
  runFlow,
  submitLogin,
  type Tenant,
} from './flow.ts';
import { type Stack, startStack } from './stack.ts';

const SCRYPT = 'scrypt$';

/**
 * Finding 11: only the authorization service, which checks passwords, ever holds a password hash;
 * hashes weaker than its policy are replaced at sign-in; a failed sign-in with an unknown username
 * records nothing derived from it. The registry hashes at a lower cost (2^14) than the
 * authorization service's policy (2^15) here, so its hashes count as weak (cheap stand-ins for
 * OWASP's 2^17 and an older, weaker hash).
 */
describe('password hashes', () => {
  let stack: Stack;
  let tenant: Tenant;
  const db = () => stack.db.pool;

  const storedHash = async (userId: string) =>
    (await db().query('SELECT password_hash FROM authz.credentials WHERE user_id = $1', [userId])).rows[0]
      ?.password_hash as string | undefined;

  /** Every row of every table of a service's schema, as text. */
  const everythingIn = async (schema: string) => {
    const { rows: tables } = await db().query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1`,
      [schema],
    );
    let text = '';
    for (const { table_name } of tables)
      text += (await db().query(`SELECT t::text AS row FROM ${schema}."${table_name}" t`)).rows
        .map((r) => r.row)
        .join('\n');
    return text;
  };

  beforeAll(async () => {
    stack = await startStack(
      inject('infra'),
      {},
      { only: { registry: { PASSWORD_SCRYPT_N: '16384' }, authorization: { PASSWORD_SCRYPT_N: '32768' } } },
    );
    tenant = await createTenant(stack);
  }, 120_000);
  afterAll(() => stack?.stop());

  it('finding 11: the registry topic’s user events and the token and consent services hold no password hash', async () => {
    // a sign-in (which re-hashes: the registry's cost is below the policy here), then a password change
    expect((await runFlow(stack, tenant)).code).toBeTruthy();
    const changed = await stack.admin(`/users/${tenant.user.id}/password`, {
      password: 'a new password 123',
    });
    expect(changed.status).toBe(204);
    tenant.user.password = 'a new password 123';

    const kafka = new Kafka({ brokers: inject('infra').kafkaBrokers, logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `${stack.topicPrefix}hashes` });
    const userEvents: { type: string; value: string }[] = [];
    await consumer.connect();
    await consumer.subscribe({
      topics: [`${stack.topicPrefix}${TOPICS.registry}`, `${stack.topicPrefix}${TOPICS.grants}`],
      fromBeginning: true,
    });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const type = message.headers?.ce_type?.toString() ?? '';
        if (/User(Created|PasswordChanged|PasswordRehashed)/.test(type))
          userEvents.push({ type, value: message.value?.toString() ?? '' });
      },
    });
    try {
      await expect.poll(() => userEvents.length, { timeout: 15_000 }).toBeGreaterThanOrEqual(3);
    } finally {
      await consumer.disconnect();
    }
    for (const { value } of userEvents) {
      expect(value).toContain('sealedPasswordHash');
      expect(value).not.toContain(SCRYPT);
      expect(value).not.toContain('"passwordHash"');
    }
    // only the authorization service keeps it
    expect(await storedHash(tenant.user.id)).toMatch(/^scrypt\$/);
    for (const schema of ['token', 'consent']) {
      const text = await everythingIn(schema);
      expect(text).toContain(tenant.user.id);
      expect(text, schema).not.toContain(SCRYPT);
    }
  });

  it('finding 11: a weaker hash is replaced at the next sign-in, and only the authorization service keeps the new one', async () => {
    const own = await createTenant(stack);
    expect(await storedHash(own.user.id)).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect((await runFlow(stack, own)).code).toBeTruthy();
    await eventually(
      async () => ((await storedHash(own.user.id))?.startsWith('scrypt$32768$8$1$') ? true : undefined),
      {
        what: 'the re-hashed password',
      },
    );
    const { rows } = await db().query(
      `SELECT data::text FROM authz.events WHERE type = 'UserPasswordRehashed' AND data->>'userId' = $1`,
      [own.user.id],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].data).not.toContain(SCRYPT);
    // the same password still signs in, without another re-hash
    expect((await runFlow(stack, own)).code).toBeTruthy();
    // a later password change wins over the re-hash of the old one
    expect(
      (await stack.admin(`/users/${own.user.id}/password`, { password: 'the next password' })).status,
    ).toBe(204);
    await eventually(
      async () => ((await storedHash(own.user.id))?.startsWith('scrypt$16384$') ? true : undefined),
      {
        what: 'the changed password',
      },
    );
    const agent = new Agent();
    const refused = await submitLogin(
      stack,
      agent,
      await loginPage(agent, authorizationRequest(stack, own)),
      own.user,
    );
    expect(refused.status).toBe(401);
    // (a sign-in, not a whole flow: one in the same second as the change would count as before it)
    const next = await loginPage(agent, authorizationRequest(stack, own));
    expect(
      (await submitLogin(stack, agent, next, { ...own.user, password: 'the next password' })).status,
    ).toBe(303);
    const rehashes = await db().query(
      `SELECT 1 FROM authz.events WHERE type = 'UserPasswordRehashed' AND data->>'userId' = $1`,
      [own.user.id],
    );
    expect(rehashes.rowCount).toBe(2);
  });

  it('finding 11: a re-hash forged by another service on the grants topic changes no password', async () => {
    const victim = await createTenant(stack);
    const before = await storedHash(victim.user.id);
    // what a compromised consent service could publish: it may write to grants, and the credentials
    // key is public (it seals, it cannot open)
    const credentialsKey = parsePublicKeys(
      stack.serviceEnv.registry.GRANTLINE_CREDENTIALS_ENCRYPTION_KEY!,
      'enc',
    )[0]!;
    const forged = {
      userId: victim.user.id,
      sealedPasswordHash: await seal(credentialsKey, await hashPassword('attacker chosen', 1024)),
      replacesVersion: 1,
    };
    await db().query(
      `INSERT INTO consent.events (event_id, stream_id, stream_version, type, data, source)
       VALUES (gen_random_uuid(), $1, 1, 'UserPasswordRehashed', $2, '/grantline/consent')`,
      [`forged-${randomBytes(6).toString('hex')}`, JSON.stringify(forged)],
    );
    // on the topic (the consent relay published it) ...
    const kafka = new Kafka({ brokers: inject('infra').kafkaBrokers, logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `${stack.topicPrefix}forged` });
    const values: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topics: [`${stack.topicPrefix}${TOPICS.grants}`], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value?.toString() ?? '');
      },
    });
    try {
      await expect
        .poll(() => values.some((v) => v.includes(forged.sealedPasswordHash)), { timeout: 20_000 })
        .toBe(true);
    } finally {
      await consumer.disconnect();
    }
    // ... and yet the stored hash is the one the registry sealed, and the attacker's password fails
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await storedHash(victim.user.id)).toBe(before);
    const agent = new Agent();
    const page = await loginPage(agent, authorizationRequest(stack, victim));
    expect(
      (await submitLogin(stack, agent, page, { ...victim.user, password: 'attacker chosen' })).status,
    ).toBe(401);
  });

  it('finding 11: a failed sign-in records nothing derived from a username that matches no user', async () => {
    const username = `Nobody.${randomBytes(4).toString('hex')}`;
    const agent = new Agent();
    const page = await loginPage(agent, authorizationRequest(stack, tenant));
    expect((await submitLogin(stack, agent, page, { username, password: 'whatever it is' })).status).toBe(
      401,
    );
    const again = await loginPage(agent, authorizationRequest(stack, tenant));
    expect((await submitLogin(stack, agent, again, { ...tenant.user, password: 'wrong' })).status).toBe(401);

    const { rows } = await db().query<{ stream_id: string; data: { reason: string; userId?: string } }>(
      `SELECT stream_id, data FROM authz.events WHERE type = 'LoginFailed' ORDER BY position`,
    );
    const unknown = rows.filter((r) => r.data.reason === 'unknown_user');
    expect(unknown).toHaveLength(1);
    const recorded = JSON.stringify(unknown);
    for (const name of [username, username.toLowerCase()])
      for (const derived of [
        name,
        createHash('sha256').update(name).digest('base64url'),
        createHash('sha256').update(name).digest('hex'),
      ])
        expect(recorded).not.toContain(derived);
    expect(Object.keys(unknown[0]!.data).sort()).toEqual(['address', 'reason']);
    // a wrong password names the user it was for
    expect(rows.filter((r) => r.data.reason === 'wrong_password').at(-1)?.data.userId).toBe(tenant.user.id);
  });
});
