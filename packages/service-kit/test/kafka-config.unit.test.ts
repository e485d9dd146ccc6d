import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config.ts';
import { kafkaConnection, partitionsOf } from '../src/kafka-config.ts';
import { loadDistributedConfig } from '../src/main.ts';

const base = { DATABASE_URL: 'postgres://db/grantline', KAFKA_BROKERS: 'kafka:9092' };
const problems = (env: Record<string, string>) => {
  try {
    loadDistributedConfig({ ...base, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('KAFKA_TOPIC_PARTITIONS', () => {
  it('one for every topic by default; a number for all, topic=N for one', () => {
    const none = loadDistributedConfig(base).KAFKA_TOPIC_PARTITIONS;
    expect(partitionsOf(none, 'grantline.grants.v1')).toBe(1);
    const spec = loadDistributedConfig({
      ...base,
      KAFKA_TOPIC_PARTITIONS: '6, grantline.tokens.v1=12',
    }).KAFKA_TOPIC_PARTITIONS;
    expect(partitionsOf(spec, 'grantline.grants.v1')).toBe(6);
    expect(partitionsOf(spec, 'grantline.tokens.v1')).toBe(12);
    // the revocations topic's heartbeat vouches for its one partition: a count for all leaves it at 1
    expect(partitionsOf(spec, 'grantline.revocations.v1')).toBe(1);
  });

  it('names a bad count, an unknown topic, or a revocations topic of more than one partition', () => {
    expect(problems({ KAFKA_TOPIC_PARTITIONS: 'grantline.revocations.v1=3' })).toEqual([
      'KAFKA_TOPIC_PARTITIONS: "grantline.revocations.v1=3": grantline.revocations.v1 has one partition (its heartbeat vouches for that partition alone)',
    ]);
    expect(problems({ KAFKA_TOPIC_PARTITIONS: '0' })).toEqual([
      'KAFKA_TOPIC_PARTITIONS: "0": a partition count is a whole number from 1',
    ]);
    expect(problems({ KAFKA_TOPIC_PARTITIONS: 'grants=3' })[0]).toMatch(
      /^KAFKA_TOPIC_PARTITIONS: "grants" is not a topic; one of grantline\.registry\.v1/,
    );
  });
});

describe('Kafka TLS and SASL', () => {
  it('none by default', () => {
    expect(kafkaConnection(loadDistributedConfig(base))).toEqual({});
  });

  it('SASL SCRAM over TLS with a private CA', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kafka-tls-'));
    writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n');
    const config = loadDistributedConfig({
      ...base,
      KAFKA_SSL_CA_FILE: join(dir, 'ca.pem'),
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'grantline',
      KAFKA_SASL_PASSWORD: 's3cret',
    });
    expect(kafkaConnection(config)).toEqual({
      ssl: { rejectUnauthorized: true, ca: ['-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n'] },
      sasl: { mechanism: 'scram-sha-512', username: 'grantline', password: 's3cret' },
    });
    expect(kafkaConnection(loadDistributedConfig({ ...base, KAFKA_SSL: 'true' }))).toEqual({ ssl: true });
  });

  it('says at start-up what is missing or unreadable, by variable', () => {
    expect(problems({ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'u' })).toEqual([
      'KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with KAFKA_SASL_MECHANISM',
    ]);
    const plain = { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' };
    expect(problems(plain)).toEqual([
      'KAFKA_SASL_MECHANISM=plain sends the password in clear: set KAFKA_SSL=true (or a KAFKA_SSL_* file)',
    ]);
    expect(problems({ ...plain, KAFKA_SSL: 'true' })).toEqual([]);
    expect(problems({ KAFKA_SASL_PASSWORD: 'p' })).toEqual([
      'KAFKA_SASL_MECHANISM is required with KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD',
    ]);
    expect(problems({ KAFKA_SASL_MECHANISM: 'gssapi' })[0]).toMatch(/^KAFKA_SASL_MECHANISM: /);
    expect(problems({ KAFKA_SSL_CERT_FILE: '/c.pem' })).toEqual([
      'KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (mutual TLS)',
    ]);
    const config = loadDistributedConfig({ ...base, KAFKA_SSL_CA_FILE: '/nowhere/ca.pem' });
    expect(() => kafkaConnection(config)).toThrow(
      expect.objectContaining({
        message: 'cannot read /nowhere/ca.pem (KAFKA_SSL_CA_FILE): ENOENT',
        startup: true,
      }),
    );
  });
});
