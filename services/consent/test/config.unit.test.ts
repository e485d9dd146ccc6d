import { generateKeyMaterial, serviceKeyEnv } from '@grantline/keys';
import { ConfigError, loadConfig } from '@grantline/service-kit';
import { describe, expect, it } from 'vitest';
import { consentConfigSchema } from '../src/config.ts';

const base = {
  DATABASE_URL: 'postgres://localhost/x',
  KAFKA_BROKERS: 'localhost:9092',
  REDIS_URL: 'redis://localhost:6379',
  GRANTLINE_ISSUER: 'https://issuer.example',
  GRANTLINE_ADMIN_TOKEN: 'a'.repeat(32),
};

describe('consent configuration', () => {
  const { keys } = generateKeyMaterial();
  const env = serviceKeyEnv(generateKeyMaterial()).consent;

  it('parses its own keys', () => {
    const config = loadConfig(consentConfigSchema, { ...base, ...env });
    expect(config.GRANTLINE_SESSION_VERIFY_KEYS).toHaveLength(1);
    expect(config.GRANTLINE_VERDICT_SIGNING_KEY[0]!.privateKey.type).toBe('private');
  });

  it('finding 5: will not start with the session signing key, and says why', () => {
    const run = () =>
      loadConfig(consentConfigSchema, {
        ...base,
        ...env,
        GRANTLINE_SESSION_VERIFY_KEYS: JSON.stringify(keys.session),
      });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(/GRANTLINE_SESSION_VERIFY_KEYS: holds private key material/);
    const { GRANTLINE_CSRF_KEY: _, ...withoutCsrf } = env;
    expect(() => loadConfig(consentConfigSchema, { ...base, ...withoutCsrf })).toThrow(
      /GRANTLINE_CSRF_KEY is required/,
    );
  });
});
