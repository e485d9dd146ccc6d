import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { baseConfigSchema, ConfigError, distributedConfigSchema, loadConfig } from '../src/config.ts';
import { loadDistributedConfig } from '../src/main.ts';

const valid = {
  DATABASE_URL: 'postgres://u@db:5432/x',
  KAFKA_BROKERS: 'k1:9092, k2:9092',
  REDIS_URL: 'redis://r:6379',
};

describe('loadConfig', () => {
  it('parses the environment with defaults', () => {
    expect(loadConfig(baseConfigSchema, {})).toMatchObject({ PORT: 8080, LOG_LEVEL: 'info' });
    expect(loadConfig(distributedConfigSchema, valid)).toMatchObject({
      KAFKA_BROKERS: ['k1:9092', 'k2:9092'],
      KAFKA_TOPIC_PREFIX: '',
    });
  });

  it('needs no Postgres, Kafka or Redis for a service itself: those are the distributed runtime settings', () => {
    expect(() => loadConfig(baseConfigSchema, { PORT: '4000' })).not.toThrow();
    expect(() => loadDistributedConfig({ ...valid, REDIS_URL: undefined }, { needsRedis: true })).toThrow(
      /REDIS_URL is required/,
    );
  });

  it('names every missing or bad variable in one error', () => {
    const error = (() => {
      try {
        loadConfig(distributedConfigSchema, { KAFKA_BROKERS: 'nope', REDIS_URL: 'http://x' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/^DATABASE_URL is required/m);
    expect(problems).toMatch(/^KAFKA_BROKERS: item 0: host:port/m);
    expect(problems).toMatch(/^REDIS_URL: must be a redis:\/\/ URL/m);
  });

  it('trusts no proxy by default, and names a malformed trusted proxy at start-up', () => {
    expect(loadConfig(baseConfigSchema, valid).GRANTLINE_TRUSTED_PROXIES).toEqual([]);
    expect(
      loadConfig(baseConfigSchema, { ...valid, GRANTLINE_TRUSTED_PROXIES: '10.0.0.0/8, ::1, uniquelocal' })
        .GRANTLINE_TRUSTED_PROXIES,
    ).toEqual(['10.0.0.0/8', '::1', 'uniquelocal']);
    expect(() =>
      loadConfig(baseConfigSchema, { ...valid, GRANTLINE_TRUSTED_PROXIES: '10.0.0.1,10.0.0.0/33' }),
    ).toThrow(/GRANTLINE_TRUSTED_PROXIES: item 1: not an IP address, CIDR range/);
  });

  it('extends with service settings', () => {
    const schema = baseConfigSchema.extend({ ISSUER: z.url() });
    expect(() => loadConfig(schema, valid)).toThrow(/ISSUER is required/);
    expect(() => loadConfig(baseConfigSchema, { PORT: 'eighty' })).toThrow(/PORT: /);
  });
});
