import { systemClock } from '@grantline/clock';
import type { ClientRecord } from '@grantline/oauth';
import { revocationKeys } from '@grantline/revocation-cache';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { type InspectorDeps, tokenInspector } from '../src/inspector.ts';

const issuer = 'https://as.example';
const client: ClientRecord = {
  clientId: 'app',
  status: 'active',
  tokenEndpointAuthMethod: 'client_secret_basic',
  grantTypes: ['authorization_code'],
  scopes: [],
  resources: [],
  redirectUris: [],
};

/** the facts as FactSet holds them: a version that moves with every fact added, undefined when not live */
const facts = () => {
  const revokedAt = new Map<string, number>();
  const state = { asked: 0, version: 0 as number | undefined };
  return {
    state,
    add(key: string, at = Date.now()) {
      revokedAt.set(key, at);
      if (state.version !== undefined) state.version++;
    },
    get version() {
      return state.version;
    },
    async revoked(keys: readonly string[]) {
      state.asked++;
      const found = new Map<string, Date>();
      for (const key of keys) if (revokedAt.has(key)) found.set(key, new Date(revokedAt.get(key)!));
      return found;
    },
  };
};

describe('the inspector keeps each access token’s deny-list answer while the facts stay as they were', () => {
  let keys: InspectorDeps['keys'];
  let sign: (claims: Record<string, unknown>) => Promise<string>;
  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256' }] });
    sign = (claims) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'k' })
        .setIssuer(issuer)
        .setSubject('ada')
        .setIssuedAt()
        .setExpirationTime('10m')
        .setJti(crypto.randomUUID())
        .sign(privateKey);
  });
  const inspector = (f: ReturnType<typeof facts>) =>
    tokenInspector({
      issuer,
      keys,
      facts: f,
      clients: async (id) => (id === client.clientId ? client : undefined),
      users: async () => undefined,
      pool: undefined as unknown as pg.Pool, // access tokens only: never read
      schema: 'unused',
      refreshIdleSeconds: 60,
      refreshMaxLifetimeSeconds: 600,
      clock: systemClock,
    });

  it('asks the facts once per version: an organisation disconnected, then the grant, each shows at once', async () => {
    const f = facts();
    const inspect = inspector(f);
    const token = await sign({ client_id: 'app', grant_id: 'g1', organisations: ['acme', 'globex'] });
    expect(await inspect(token)).toMatchObject({ active: true, organisations: ['acme', 'globex'] });
    expect(await inspect(token)).toMatchObject({ organisations: ['acme', 'globex'] });
    expect(f.state.asked).toBe(1);

    f.add(revocationKeys.grantOrganisation('g1', 'globex'));
    expect(await inspect(token)).toMatchObject({ active: true, organisations: ['acme'] });
    expect(await inspect(token)).toMatchObject({ organisations: ['acme'] });
    expect(f.state.asked).toBe(2);

    f.add(revocationKeys.grant('g1'));
    expect(await inspect(token)).toBeUndefined();
    expect(await inspect(token)).toBeUndefined();
    expect(f.state.asked).toBe(3);
  });

  it('keeps nothing while the facts cannot vouch for themselves (no version): every check asks them', async () => {
    const f = facts();
    f.state.version = undefined;
    const inspect = inspector(f);
    const token = await sign({ client_id: 'app', grant_id: 'g2' });
    expect(await inspect(token)).toMatchObject({ active: true, grant_id: 'g2' });
    f.add(revocationKeys.token('unrelated'));
    expect(await inspect(token)).toMatchObject({ active: true });
    f.add(revocationKeys.subject('ada'), Date.now() + 1_000);
    expect(await inspect(token)).toBeUndefined();
    expect(f.state.asked).toBe(3);
  });

  it('a subject revoked before the token began does not deny it; one revoked after it does', async () => {
    const f = facts();
    const inspect = inspector(f);
    f.add(revocationKeys.subject('ada'), Date.now() - 60_000);
    const token = await sign({ client_id: 'app' });
    expect(await inspect(token)).toMatchObject({ active: true });
    f.add(revocationKeys.client('app'), Date.now() + 1_000);
    expect(await inspect(token)).toBeUndefined();
  });
});
