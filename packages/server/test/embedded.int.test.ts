import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@grantline/service-kit';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbedded } from '../src/embedded.ts';

const root = mkdtempSync(join(tmpdir(), 'grantline-embedded-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const env = (dataDir: string, extra: Record<string, string> = {}) => ({
  GRANTLINE_DATA_DIR: join(root, dataDir),
  PORT: '0',
  GRANTLINE_DEMO: 'false',
  LOG_LEVEL: 'silent',
  PASSWORD_SCRYPT_N: '16384',
  ...extra,
});
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('started, but should not have');
    },
    (error: unknown) => error as Error & { startup?: boolean },
  );

/** The embedded mode's start-up failures: each one line naming the cause and the remedy, nothing left open. */
describe('pnpm start: clear start-up errors', () => {
  it('names a malformed variable', async () => {
    const error = await failure(startEmbedded(env('bad', { PORT: 'eighty', GRANTLINE_DEMO: 'maybe' })));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/PORT: /);
    expect(error.message).toMatch(/GRANTLINE_DEMO: /);
  });

  it('names a data directory it cannot write', async () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'not a directory');
    const error = await failure(startEmbedded({ ...env('x'), GRANTLINE_DATA_DIR: join(file, 'data') }));
    expect(error.startup).toBe(true);
    expect(error.message).toMatch(/cannot (create|write) .*ENOTDIR.*GRANTLINE_DATA_DIR/);
  });

  it('names a port in use, and leaves the data directory free for the next start', async () => {
    const busy = await new Promise<Server>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => resolve(server));
    });
    const port = String((busy.address() as AddressInfo).port);
    try {
      const error = await failure(startEmbedded(env('port', { PORT: port, MANAGEMENT_PORT: '0' })));
      expect(error.startup).toBe(true);
      expect(error.message).toMatch(new RegExp(`port ${port} .* already in use \\(PORT\\)`));
    } finally {
      busy.close();
    }
    const server = await startEmbedded(env('port'));
    await server.stop();
  });

  it('refuses a second server on the same data directory', async () => {
    const first = await startEmbedded(env('shared'));
    try {
      const error = await failure(startEmbedded(env('shared')));
      expect(error.startup).toBe(true);
      expect(error.message).toMatch(/already open.*GRANTLINE_DATA_DIR/);
    } finally {
      await first.stop();
    }
  });

  it('refuses a data directory whose lock another process keeps touching, whatever its pid, and takes over one left untouched', async () => {
    const dir = join(root, 'locked');
    const first = await startEmbedded(env('locked'));
    await first.stop();
    // held: touched just now, even if it names this very pid (containers: pid 1 each)
    writeFileSync(join(dir, 'grantline.lock'), JSON.stringify({ pid: process.pid, token: 'other' }));
    const error = await failure(startEmbedded(env('locked')));
    expect(error.startup).toBe(true);
    expect(error.message).toContain(`another Grantline (pid ${process.pid}) is using ${dir}`);
    // abandoned: untouched for a minute
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'grantline.lock'), old, old);
    const again = await startEmbedded(env('locked'));
    await again.stop();
  });

  it('seeds the demo for a loopback issuer only, unless told', async () => {
    /** the environment without GRANTLINE_DEMO: the default decides */
    const unset = (e: Record<string, string>) =>
      Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'GRANTLINE_DEMO'));
    const local = await startEmbedded(unset(env('demo-local')));
    try {
      expect(local.demo?.user.username).toBe('demo');
    } finally {
      await local.stop();
    }
    const remote = await startEmbedded(
      unset(env('demo-remote', { GRANTLINE_ISSUER: 'https://auth.example.com' })),
    );
    try {
      expect(remote.demo).toBeUndefined();
      expect((await fetch(`${remote.url}/demo`)).status).toBe(404);
    } finally {
      await remote.stop();
    }
  });

  it('names signing keys that the configured key-encryption key cannot open, and the remedy', async () => {
    const kek = () => randomBytes(32).toString('base64url');
    const original = kek();
    const first = await startEmbedded(env('kek', { GRANTLINE_KEY_ENCRYPTION_KEY: original }));
    expect((await fetch(`${first.url}/oauth2/jwks`)).status).toBe(200);
    await first.stop();
    const error = await failure(startEmbedded(env('kek', { GRANTLINE_KEY_ENCRYPTION_KEY: kek() })));
    expect(error.startup).toBe(true);
    expect(error.message).toMatch(
      /cannot be opened with the configured GRANTLINE_KEY_ENCRYPTION_KEY.*Restore/s,
    );
    // and the right key still opens them: nothing was lost
    const again = await startEmbedded(env('kek', { GRANTLINE_KEY_ENCRYPTION_KEY: original }));
    await again.stop();
  });
});
