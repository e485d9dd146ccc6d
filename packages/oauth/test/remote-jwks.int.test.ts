import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublicAddress, remoteKeySets } from '../src/remote-jwks.ts';

/** Finding 10: a client's `jwks_uri` must not make the server probe its own network (blind SSRF). */
describe('remote key sets of private_key_jwt clients', () => {
  let server: Server;
  let port: number;
  const hits: string[] = [];
  let jwks: string;
  let token: string;

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] });
    token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(privateKey);
    server = createServer((req, res) => {
      hits.push(req.url ?? '');
      if (req.url === '/huge') return res.end(JSON.stringify({ keys: [], pad: 'x'.repeat(200_000) }));
      if (req.url === '/hang') return; // never answers
      res.setHeader('content-type', 'application/json').end(jwks);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  const verifyWith = (keys: ReturnType<typeof remoteKeySets>, uri: string) =>
    import('jose').then(({ compactVerify }) => compactVerify(token, keys(uri)));

  it('finding 10: refuses loopback, private and link-local destinations, by address and by resolved name', async () => {
    const keys = remoteKeySets({ timeoutMs: 1_000 });
    hits.length = 0;
    for (const uri of [
      `http://127.0.0.1:${port}/jwks.json`,
      `http://localhost:${port}/jwks.json`, // a name: checked on the address it resolves to
      `http://[::1]:${port}/jwks.json`,
      'http://169.254.169.254/latest/meta-data',
      'http://10.0.0.1/jwks.json',
      'http://[::ffff:127.0.0.1]/jwks.json',
    ]) {
      await expect(verifyWith(keys, uri), uri).rejects.toThrow();
    }
    expect(hits).toEqual([]);
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.1.1',
      '::1',
      'fe80::1',
      'fd00::1',
      '0.0.0.0',
    ])
      expect(isPublicAddress(a), a).toBe(false);
    for (const a of ['93.184.216.34', '2606:4700::6810:85e5']) expect(isPublicAddress(a), a).toBe(true);
  });

  it('finding 10: bounds the fetch in size and time, and fetches when private addresses are allowed (development)', async () => {
    const keys = remoteKeySets({ allowPrivateAddresses: true, timeoutMs: 300, maxBytes: 64 * 1024 });
    await expect(verifyWith(keys, `http://127.0.0.1:${port}/jwks.json`)).resolves.toBeDefined();
    await expect(verifyWith(keys, `http://127.0.0.1:${port}/huge`)).rejects.toThrow();
    const started = Date.now();
    await expect(verifyWith(keys, `http://127.0.0.1:${port}/hang`)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('keeps a bounded number of key sets (least recently used go first)', async () => {
    const keys = remoteKeySets({ allowPrivateAddresses: true, maxEntries: 2 });
    const uri = (n: number) => `http://127.0.0.1:${port}/jwks-${n}.json`;
    const first = keys(uri(1));
    expect(keys(uri(1))).toBe(first);
    keys(uri(2));
    keys(uri(3));
    expect(keys(uri(1))).not.toBe(first);
  });
});
