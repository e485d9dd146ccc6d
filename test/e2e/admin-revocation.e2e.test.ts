import { offsetClock } from '@grantline/clock';
import { eventually } from '@grantline/testing';
import { decodeJwt } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Agent, createTenant, redeem, refresh, runFlow, type Tenant } from './flow.ts';
import { ADMIN_TOKEN, type Stack, startStack } from './stack.ts';

const NEW_GRANT = { params: { grant_management_action: 'create' } };
type Tokens = { access_token: string; refresh_token: string; grant_id: string };

/**
 * The admin's revocations on the consent service's management listener: everything of a subject
 * (account deletion), everything of a client (a compromised app); and F10, a grant revoked while
 * refreshes are in flight.
 */
describe('admin revocation of a subject or a client', () => {
  const clock = offsetClock();
  let stack: Stack;

  const adminRevoke = async (path: string, token = ADMIN_TOKEN) => {
    const res = await fetch(`${stack.consentManagementUrl}/admin/revocations${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  };
  const tokensFor = async (t: Tenant, options: Parameters<typeof runFlow>[2] = NEW_GRANT) => {
    const flow = await runFlow(stack, t, options);
    const res = await redeem(stack, t, flow.code!, flow.verifier);
    expect(res.status).toBe(200);
    return res.body as Tokens;
  };
  const consentEvents = async (stream: string) =>
    (
      await stack.db.pool.query<{ type: string; data: Record<string, unknown> }>(
        'SELECT type, data FROM consent.events WHERE stream_id = $1 ORDER BY position',
        [stream],
      )
    ).rows;

  beforeAll(async () => {
    stack = await startStack(inject('infra'), {}, { clock });
  }, 120_000);
  afterAll(() => stack?.stop());

  it('account deletion: every active grant of the subject is revoked (reason admin), SubjectRevoked is recorded, and its refresh tokens fail with invalid_grant at once', async () => {
    const tenant = await createTenant(stack);
    const bystander = await createTenant(stack);
    const [a, b] = [await tokensFor(tenant), await tokensFor(tenant)];
    const theirs = await tokensFor(bystander);
    const res = await adminRevoke(`/subjects/${tenant.user.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ subject: tenant.user.id, projected: true });
    expect((res.body.revoked_grants as string[]).sort()).toEqual([a.grant_id, b.grant_id].sort());
    expect(await consentEvents(`subject-revocation-${tenant.user.id}`)).toEqual([
      { type: 'SubjectRevoked', data: { subject: tenant.user.id, reason: 'admin' } },
    ]);
    for (const grant of [a, b]) {
      expect((await consentEvents(`grant-${grant.grant_id}`)).at(-1)).toEqual({
        type: 'GrantRevoked',
        data: { grantId: grant.grant_id, reason: 'admin' },
      });
      // no wait: the answer came once the token service had applied it
      const refused = await refresh(stack, tenant, grant.refresh_token);
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe('invalid_grant');
    }
    expect((await refresh(stack, bystander, theirs.refresh_token)).status).toBe(200);
  });

  it('a compromised app: every grant of the client is revoked, ClientRevoked is recorded; a code issued before is refused, a new connection after works', async () => {
    const tenant = await createTenant(stack);
    const tokens = await tokensFor(tenant);
    const pending = await runFlow(stack, tenant, NEW_GRANT);
    const res = await adminRevoke(`/clients/${tenant.client.client_id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ client_id: tenant.client.client_id, projected: true });
    expect(res.body.revoked_grants).toHaveLength(2);
    expect(await consentEvents(`client-revocation-${tenant.client.client_id}`)).toEqual([
      { type: 'ClientRevoked', data: { clientId: tenant.client.client_id, reason: 'admin' } },
    ]);
    expect((await refresh(stack, tenant, tokens.refresh_token)).body.error).toBe('invalid_grant');
    const late = await redeem(stack, tenant, pending.code!, pending.verifier);
    expect(late.status).toBe(400);
    expect(late.body.error).toBe('invalid_grant');
    // what begins after the revocation is new grant material (codes carry `iat` in whole seconds)
    clock.advance(1_000);
    const fresh = await tokensFor(tenant);
    expect(fresh.grant_id).not.toBe(tokens.grant_id);
    expect((await refresh(stack, tenant, fresh.refresh_token)).status).toBe(200);
  });

  it('answers RFC 7807 problems: 401 without the admin token, 404 for an unknown subject or client, 400 for a malformed id', async () => {
    const tenant = await createTenant(stack);
    for (const token of ['', 'x'.repeat(43)]) {
      const res = await adminRevoke(`/subjects/${tenant.user.id}`, token);
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    for (const path of ['/subjects/usr_nobody', '/clients/no-such-client']) {
      const res = await adminRevoke(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ status: 404 });
    }
    const bad = await adminRevoke('/subjects/a%20b');
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    // nothing was revoked by the refused requests
    expect((await tokensFor(tenant)).refresh_token).toBeTruthy();
  });

  /**
   * F10. What is guaranteed: a refresh records its rotation and access token with a statement that
   * itself checks the grant and the admin's revocations in this service's projections, and answers
   * 200 only once that statement has committed; the admin revocation answers only once the token
   * service has applied it. So every token handed out was recorded before the revocation was
   * acknowledged, and no refresh after the acknowledgement succeeds. (A token recorded between the
   * revocation's commit in the consent service and its projection in the token service may be handed
   * out: it carries the grant id, which the deny-list revokes.)
   */
  it('F10: a subject revoked during 50 in-flight refreshes of distinct families of one grant: no token recorded after the acknowledgement is handed out, and none after it succeeds', async () => {
    const tenant = await createTenant(stack);
    const agent = new Agent();
    // one grant, 50 refresh token families (50 codes; after the first consent the page is skipped)
    const families: Tokens[] = [await tokensFor(tenant, { agent, ...NEW_GRANT })];
    const into = { grant_management_action: 'merge', grant_id: families[0]!.grant_id };
    for (let i = 1; i < 50; i++) families.push(await tokensFor(tenant, { agent, params: into }));
    expect(new Set(families.map((f) => f.grant_id)).size).toBe(1);

    const refreshes = families.map((f) => refresh(stack, tenant, f.refresh_token));
    // revoke while they are in flight: once the first of them has been answered
    await Promise.race(refreshes);
    const revoked = await adminRevoke(`/subjects/${tenant.user.id}`);
    // on the services' clock, which `iat` and the events' recorded_at read
    const acknowledgedAt = clock.now();
    expect(revoked.status).toBe(200);
    expect(revoked.body.projected).toBe(true);
    const results = await Promise.all(refreshes);

    const won = results.filter((r) => r.status === 200);
    const lost = results.filter((r) => r.status !== 200);
    for (const r of lost) expect(r.body.error).toBe('invalid_grant');
    console.log(
      `F10: ${won.length} refreshes answered before the revocation took effect, ${lost.length} refused`,
    );
    // a refused one recorded nothing: no access token of the grant after the acknowledgement
    const { rows: late } = await stack.db.pool.query(
      `SELECT 1 FROM token.events WHERE type = 'AccessTokenIssued' AND data->>'grantId' = $1 AND recorded_at > $2`,
      [families[0]!.grant_id, new Date(acknowledgedAt)],
    );
    expect(late).toHaveLength(0);
    for (const r of won) {
      const { jti, iat } = decodeJwt(r.body.access_token as string);
      expect(iat! * 1000).toBeLessThanOrEqual(acknowledgedAt);
      const { rows } = await stack.db.pool.query<{ at: Date }>(
        `SELECT recorded_at AS at FROM token.events WHERE type = 'AccessTokenIssued' AND data->>'jti' = $1`,
        [jti],
      );
      expect(rows[0]!.at.getTime()).toBeLessThan(acknowledgedAt);
    }
    // after the acknowledgement nothing of the grant refreshes: neither the new tokens nor the old
    const after = await Promise.all(
      results.map((r, i) =>
        refresh(
          stack,
          tenant,
          r.status === 200 ? (r.body.refresh_token as string) : families[i]!.refresh_token,
        ),
      ),
    );
    expect(after.map((r) => r.body.error)).toEqual(after.map(() => 'invalid_grant'));
  }, 120_000);

  /**
   * F10's other half: a refresh records its token with a statement whose guard reads the snapshot it
   * began with. One that is still running when the token service applies the revocation must commit
   * before the revocation is acknowledged: the projection waits it out (`waitingOutAppends`).
   */
  it('F10: a refresh statement still running when the revocation is applied commits before the revocation is acknowledged', async () => {
    const tenant = await createTenant(stack);
    const family = await tokensFor(tenant);
    const HOLD = 7_412;
    const holder = new pg.Client({ connectionString: stack.db.url });
    await holder.connect();
    await stack.db.pool.query(`
      CREATE FUNCTION token.hold_f10() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_xact_lock(${HOLD}); RETURN NEW; END $$;
      CREATE TRIGGER hold_f10 BEFORE INSERT ON token.events FOR EACH ROW
        WHEN (NEW.type = 'AccessTokenIssued' AND NEW.data->>'grantType' = 'refresh_token')
        EXECUTE FUNCTION token.hold_f10();`);
    await holder.query('SELECT pg_advisory_lock($1)', [HOLD]);
    const waiting = async (lock: string) =>
      ((await stack.db.pool.query(`SELECT 1 FROM pg_locks WHERE ${lock} AND NOT granted`)).rowCount ?? 0) >= 1
        ? true
        : undefined;
    try {
      const answered: string[] = [];
      const refreshed = refresh(stack, tenant, family.refresh_token).then((r) => {
        answered.push('refresh');
        return r;
      });
      // the refresh's statement has its snapshot, and waits
      await eventually(() => waiting(`locktype = 'advisory' AND objid = ${HOLD}`), {
        what: 'the refresh statement to wait',
      });
      const revoked = adminRevoke(`/subjects/${tenant.user.id}`).then((r) => {
        answered.push('revocation');
        return r;
      });
      // the token service applies the revocation, and waits for the statement running
      await eventually(() => waiting(`relation = 'token.append_gate'::regclass AND mode = 'ExclusiveLock'`), {
        what: 'the revocation projection to wait for the refresh',
      });
      await holder.query('SELECT pg_advisory_unlock($1)', [HOLD]);
      const [r, v] = await Promise.all([refreshed, revoked]);
      expect(r.status).toBe(200);
      expect(v.status).toBe(200);
      expect(v.body.projected).toBe(true);
      expect(answered).toEqual(['refresh', 'revocation']);
      // and what it handed out refreshes no more
      expect((await refresh(stack, tenant, r.body.refresh_token as string)).body.error).toBe('invalid_grant');
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      await holder.end();
      await stack.db.pool.query('DROP TRIGGER hold_f10 ON token.events; DROP FUNCTION token.hold_f10()');
    }
  }, 120_000);
});
