import { randomUUID } from 'node:crypto';
import { manualClock } from '@grantline/clock';
import type { Request } from 'express';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  type AuthMethod,
  authenticateClient,
  type ClientAuthDeps,
  type ClientRecord,
} from '../src/client-auth.ts';
import { InvalidClient } from '../src/errors.ts';
import { remoteKeySets } from '../src/remote-jwks.ts';
import { sha256Digest } from '../src/secrets.ts';

const TOKEN_ENDPOINT = 'https://as.example/oauth2/token';

const client = (method: AuthMethod, extra: Partial<ClientRecord> = {}): ClientRecord => ({
  clientId: 'cl_1',
  status: 'active',
  tokenEndpointAuthMethod: method,
  grantTypes: ['client_credentials'],
  scopes: [],
  resources: [],
  redirectUris: [],
  ...extra,
});

const deps = (record: ClientRecord | undefined): ClientAuthDeps => ({
  lookup: async () => record,
  claimJti: async () => true,
  lockedOutFor: () => 0,
  recordFailure: async () => 0,
  assertionAudiences: [TOKEN_ENDPOINT],
  remoteKeys: remoteKeySets(),
});

const request = (headers: Record<string, string> = {}) =>
  ({ get: (name: string) => headers[name.toLowerCase()], ip: '192.0.2.1' }) as unknown as Request;

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

describe('client authentication', () => {
  it('finding 1: a client without a secret of its own fails every secret-based method, whatever is presented', async () => {
    // switched to a secret method without ever being given a secret (the hole of finding 1)
    for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
      const record = client(method);
      // the old fixed dummy's preimage, an empty secret, and anything else
      for (const secret of ['grantline: no such client', '', 'x']) {
        const attempt =
          method === 'client_secret_basic'
            ? authenticateClient(deps(record), request({ authorization: basic('cl_1', secret) }), {})
            : authenticateClient(deps(record), request(), { client_id: 'cl_1', client_secret: secret });
        await expect(attempt, `${method} with ${JSON.stringify(secret)}`).rejects.toBeInstanceOf(
          InvalidClient,
        );
      }
    }
    // and a client that has its own secret still authenticates with it
    const own = client('client_secret_basic', { secretDigest: sha256Digest('s3cret') });
    await expect(
      authenticateClient(deps(own), request({ authorization: basic('cl_1', 's3cret') }), {}),
    ).resolves.toMatchObject({ clientId: 'cl_1' });
  });

  it('checks a failure against a cached client once more past the cache: a rotated secret works at once', async () => {
    const stale = client('client_secret_basic', { secretDigest: sha256Digest('old secret') });
    const fresh = client('client_secret_basic', { secretDigest: sha256Digest('new secret') });
    let freshReads = 0;
    const withCache: ClientAuthDeps = {
      ...deps(stale),
      lookupFresh: async () => {
        freshReads++;
        return fresh;
      },
    };
    await expect(
      authenticateClient(withCache, request({ authorization: basic('cl_1', 'new secret') }), {}),
    ).resolves.toBe(fresh);
    await expect(
      authenticateClient(withCache, request({ authorization: basic('cl_1', 'wrong') }), {}),
    ).rejects.toBeInstanceOf(InvalidClient);
    expect(freshReads).toBe(2); // every failure against a cached client costs the read an unknown one costs
  });

  it('accepts a private_key_jwt assertion whose exp is 5 minutes ahead by a client clock a little fast, not one far beyond', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const record = client('private_key_jwt', {
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] },
    });
    const assertion = (expiresIn: number) =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer('cl_1')
        .setSubject('cl_1')
        .setAudience(TOKEN_ENDPOINT)
        .setJti(randomUUID())
        .setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn)
        .sign(privateKey);
    const form = async (expiresIn: number) => ({
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(expiresIn),
    });
    // a library's default 5 minutes, from a clock 10 s fast
    await expect(authenticateClient(deps(record), request(), await form(310))).resolves.toMatchObject({
      clientId: 'cl_1',
    });
    await expect(authenticateClient(deps(record), request(), await form(3_600))).rejects.toBeInstanceOf(
      InvalidClient,
    );
  });

  it("checks an assertion's exp on the injected clock (30 s of skew allowed), and holds its jti until 60 s past exp", async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const record = client('private_key_jwt', {
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] },
    });
    const t0 = Date.parse('2031-05-01T00:00:00Z');
    const clock = manualClock(t0);
    const claimed: number[] = [];
    const timed: ClientAuthDeps = {
      ...deps(record),
      clock,
      claimJti: async (_key, ttlSeconds) => {
        claimed.push(ttlSeconds);
        return true;
      },
    };
    const form = async () => ({
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer('cl_1')
        .setSubject('cl_1')
        .setAudience(TOKEN_ENDPOINT)
        .setJti(randomUUID())
        .setExpirationTime(t0 / 1000 + 60)
        .sign(privateKey),
    });
    await expect(authenticateClient(timed, request(), await form())).resolves.toMatchObject({
      clientId: 'cl_1',
    });
    expect(claimed).toEqual([120]);
    clock.advance(89_000);
    await expect(authenticateClient(timed, request(), await form())).resolves.toMatchObject({
      clientId: 'cl_1',
    });
    clock.advance(1_000);
    await expect(authenticateClient(timed, request(), await form())).rejects.toBeInstanceOf(InvalidClient);
  });
});
