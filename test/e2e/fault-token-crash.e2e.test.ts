import { eventually, freePort, spawnScript } from '@grantline/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTenant, redeem, runFlow, type Tenant } from './flow.ts';
import { basic, type Stack, startStack } from './stack.ts';

/** the advisory lock the injected fault waits on */
const HOLD = 7_411;

/**
 * security.md F11: a token service killed after its code redemption committed and before it answered.
 * The client never saw the response, so it retries, at another instance. What happens, by design:
 * the retry is a second redemption of a spent code, so it gets `invalid_grant` and revokes the
 * refresh token family the lost answer carried (RFC 6749 §4.1.2: a reused code SHOULD revoke what it
 * issued; the token service cannot tell a lost answer from a stolen code). Nothing usable was lost:
 * the lost tokens are dead, and the client starts a new authorization request, which with a live
 * sign-in and an existing grant needs no user interaction.
 */
describe('F11: a token service killed right after a code redemption commits', () => {
  let stack: Stack;
  let tenant: Tenant;
  let holder: pg.Client;
  const events = async (type: string, clientId: string) =>
    (
      await stack.db.pool.query<{ stream_id: string; data: Record<string, unknown> }>(
        `SELECT stream_id, data FROM token.events WHERE type = $1 AND data->>'clientId' = $2 ORDER BY position`,
        [type, clientId],
      )
    ).rows;

  beforeAll(async () => {
    stack = await startStack(inject('infra'));
    tenant = await createTenant(stack);
    holder = new pg.Client({ connectionString: stack.db.url });
    await holder.connect();
  }, 120_000);
  afterAll(async () => {
    await holder?.end();
    await stack?.stop();
  });

  it('F11: the retry of the lost redemption is invalid_grant and revokes the lost refresh token family; a new authorization works', async () => {
    // a second token service instance, as a process of its own, on the same database and topics
    const port = await freePort();
    const victim = spawnScript('services/token/src/main.ts', {
      ...stack.tokenEnv,
      PORT: String(port),
      LOG_LEVEL: 'warn',
    });
    const victimUrl = `http://127.0.0.1:${port}`;
    await eventually(
      async () => {
        if (victim.child.exitCode !== null) throw new Error(`token process exited: ${victim.output()}`);
        return (await fetch(`${victimUrl}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined;
      },
      { what: 'the token process to be ready', timeoutMs: 60_000, intervalMs: 200 },
    );

    // The fault: the redemption records the code, the refresh token family and the access token in
    // one statement, and answers once it has committed. The test holds the statement (its access
    // token's insert waits on an advisory lock) and kills the process meanwhile; then it lets the
    // statement go on. Postgres runs a statement it has received to its end without asking whether the
    // client is still there (client_connection_check_interval is off by default; the statement's Sync
    // is already in the server's buffer and its small result never fills the socket), so the
    // redemption commits after the process died: its answer is lost, as in a crash between commit
    // and answer.
    await stack.db.pool.query(`
      CREATE FUNCTION token.hold_issuance() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock(${HOLD}); RETURN NEW; END $$;
      CREATE TRIGGER hold_issuance BEFORE INSERT ON token.events FOR EACH ROW
        WHEN (NEW.type = 'AccessTokenIssued') EXECUTE FUNCTION token.hold_issuance();`);
    await holder.query('SELECT pg_advisory_lock($1)', [HOLD]);
    const clientId = tenant.client.client_id;
    const flow = await runFlow(stack, tenant);
    try {
      const lost = fetch(`${victimUrl}/oauth2/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: basic(clientId, tenant.client.client_secret!),
        },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: flow.code!,
          redirect_uri: tenant.client.redirect_uri,
          code_verifier: flow.verifier,
        }),
      }).then(
        (res) => `answered ${res.status}`,
        () => 'connection lost',
      );
      await eventually(
        async () => {
          const waiting = await stack.db.pool.query(
            `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted`,
            [HOLD],
          );
          return waiting.rowCount === 1 ? true : undefined;
        },
        { what: 'the redemption statement to wait' },
      );
      victim.child.kill('SIGKILL');
      expect(await victim.exited).toBe('SIGKILL');
      expect(await lost).toBe('connection lost');
      await holder.query('SELECT pg_advisory_unlock($1)', [HOLD]);
      const [redeemed] = await eventually(
        async () => {
          const rows = await events('CodeRedeemed', clientId);
          return rows.length === 1 ? rows : undefined;
        },
        { what: 'the lost redemption to commit' },
      );
      const { accessTokenId, familyId, codeId } = redeemed!.data as Record<string, string>;

      // the client retries at the surviving instance
      const retry = await redeem(stack, tenant, flow.code!, flow.verifier);
      expect(retry.status).toBe(400);
      expect(retry.body).toEqual({
        error: 'invalid_grant',
        error_description: 'authorization code has already been used',
      });
      // what the lost answer carried is dead: its family revoked, its access token (recorded with the
      // redemption, in the same statement) reported for the deny-list
      expect((await events('CodeReplayDetected', clientId)).map((e) => e.data)).toEqual([
        expect.objectContaining({ codeId, accessTokenIds: [accessTokenId] }),
      ]);
      const revoked = await stack.db.pool.query<{ data: Record<string, unknown> }>(
        `SELECT data FROM token.events WHERE stream_id = $1 AND type = 'RefreshFamilyRevoked'`,
        [`refresh-${familyId}`],
      );
      expect(revoked.rows.map((r) => r.data)).toEqual([expect.objectContaining({ reason: 'code_replay' })]);
      expect((await events('AccessTokenIssued', clientId)).some((e) => e.data.jti === accessTokenId)).toBe(
        true,
      );
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      await stack.db.pool.query(
        'DROP TRIGGER hold_issuance ON token.events; DROP FUNCTION token.hold_issuance()',
      );
      if (victim.child.exitCode === null) victim.child.kill('SIGKILL');
    }

    // the client starts over: the sign-in and the grant are intact, so no page is shown
    const again = await runFlow(stack, tenant, { agent: flow.agent });
    expect(again.consentShown).toBe(false);
    expect((await redeem(stack, tenant, again.code!, again.verifier)).status).toBe(200);
  }, 120_000);
});
