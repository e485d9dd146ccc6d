import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { TOPICS } from '@grantline/events';
import type { KafkaBusOptions } from '@grantline/message-bus';
import { z } from 'zod';

const TOPIC_NAMES: readonly string[] = Object.values(TOPICS);
const flag = (fallback: 'true' | 'false') =>
  z
    .enum(['true', 'false'])
    .default(fallback)
    .transform((v) => v === 'true');

/**
 * `N` (every topic), `topic=N` entries (one topic), or both: `3,grantline.tokens.v1=12`. Each
 * event's key is its stream (aggregate) id, so one grant's events stay in one partition, in order,
 * whatever the count; the count bounds how many consumers of one group work in parallel.
 */
const partitionsSchema = z
  .string()
  .default('1')
  .transform((value, ctx) => {
    const spec: { all: number; byTopic: Record<string, number> } = { all: 1, byTopic: {} };
    for (const entry of value
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean)) {
      const [topic, count] = entry.includes('=') ? entry.split('=', 2) : [undefined, entry];
      const n = Number(count);
      if (!Number.isInteger(n) || n < 1 || n > 10_000) {
        ctx.addIssue({ code: 'custom', message: `"${entry}": a partition count is a whole number from 1` });
      } else if (topic === undefined) {
        spec.all = n;
      } else if (!TOPIC_NAMES.includes(topic.trim())) {
        ctx.addIssue({
          code: 'custom',
          message: `"${topic}" is not a topic; one of ${TOPIC_NAMES.join(', ')}`,
        });
      } else if (topic.trim() === TOPICS.revocations && n !== 1) {
        ctx.addIssue({
          code: 'custom',
          message: `"${entry}": ${TOPICS.revocations} has one partition (its heartbeat vouches for that partition alone)`,
        });
      } else {
        spec.byTopic[topic.trim()] = n;
      }
    }
    return spec;
  });

/** The Kafka settings of the distributed mode beyond the brokers: partitions, TLS and SASL. */
export const kafkaConfigShape = {
  /** partitions of each topic created at start-up (existing topics are left as they are); see above */
  KAFKA_TOPIC_PARTITIONS: partitionsSchema,
  /** TLS to the brokers (on with any KAFKA_SSL_* file) */
  KAFKA_SSL: flag('false'),
  /** PEM file of the CA that signed the brokers' certificates (default: the system's CAs) */
  KAFKA_SSL_CA_FILE: z.string().min(1).optional(),
  /** PEM files of this client's certificate and key, for brokers that require mutual TLS */
  KAFKA_SSL_CERT_FILE: z.string().min(1).optional(),
  KAFKA_SSL_KEY_FILE: z.string().min(1).optional(),
  /** check the brokers' certificates (turn off only to try a test cluster) */
  KAFKA_SSL_REJECT_UNAUTHORIZED: flag('true'),
  /** SASL mechanism: plain, scram-sha-256 or scram-sha-512; needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD */
  KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
};

const kafkaConfigSchema = z.object(kafkaConfigShape);
export type KafkaSettings = z.infer<typeof kafkaConfigSchema>;

/** TLS to the brokers: KAFKA_SSL, or any of the KAFKA_SSL_* files (which imply it) */
const tlsOn = (c: KafkaSettings) =>
  c.KAFKA_SSL || Boolean(c.KAFKA_SSL_CA_FILE || c.KAFKA_SSL_CERT_FILE || c.KAFKA_SSL_KEY_FILE);

/** Cross-field rules of the Kafka settings, as messages naming the variables (for ConfigError). */
export const kafkaConfigProblems = (c: KafkaSettings): string[] => {
  const problems: string[] = [];
  if (c.KAFKA_SASL_MECHANISM && (!c.KAFKA_SASL_USERNAME || !c.KAFKA_SASL_PASSWORD))
    problems.push('KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required with KAFKA_SASL_MECHANISM');
  if (!c.KAFKA_SASL_MECHANISM && (c.KAFKA_SASL_USERNAME || c.KAFKA_SASL_PASSWORD))
    problems.push('KAFKA_SASL_MECHANISM is required with KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD');
  if (c.KAFKA_SASL_MECHANISM === 'plain' && !tlsOn(c))
    problems.push(
      'KAFKA_SASL_MECHANISM=plain sends the password in clear: set KAFKA_SSL=true (or a KAFKA_SSL_* file)',
    );
  if (Boolean(c.KAFKA_SSL_CERT_FILE) !== Boolean(c.KAFKA_SSL_KEY_FILE))
    problems.push('KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (mutual TLS)');
  return problems;
};

const readPem = (file: string, variable: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    // `startup: true`: printed as it is at start-up (config.ts StartupError; not imported, no cycle)
    throw Object.assign(
      new Error(
        `cannot read ${file} (${variable}): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      ),
      { startup: true },
    );
  }
};

/** kafkajs's `ssl` and `sasl` from the settings; reads the PEM files (a start-up error names one it cannot). */
export const kafkaConnection = (c: KafkaSettings): Pick<KafkaBusOptions, 'ssl' | 'sasl'> => {
  const files = c.KAFKA_SSL_CA_FILE || c.KAFKA_SSL_CERT_FILE;
  const tls: ConnectionOptions = {
    rejectUnauthorized: c.KAFKA_SSL_REJECT_UNAUTHORIZED,
    ...(c.KAFKA_SSL_CA_FILE && { ca: [readPem(c.KAFKA_SSL_CA_FILE, 'KAFKA_SSL_CA_FILE')] }),
    ...(c.KAFKA_SSL_CERT_FILE && { cert: readPem(c.KAFKA_SSL_CERT_FILE, 'KAFKA_SSL_CERT_FILE') }),
    ...(c.KAFKA_SSL_KEY_FILE && { key: readPem(c.KAFKA_SSL_KEY_FILE, 'KAFKA_SSL_KEY_FILE') }),
  };
  const ssl = c.KAFKA_SSL || files ? (files || !c.KAFKA_SSL_REJECT_UNAUTHORIZED ? tls : true) : undefined;
  const { KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: username, KAFKA_SASL_PASSWORD: password } = c;
  // one object per mechanism: kafkajs's SASLOptions is a union discriminated by it
  const sasl =
    mechanism && username && password
      ? mechanism === 'plain'
        ? { mechanism, username, password }
        : mechanism === 'scram-sha-256'
          ? { mechanism, username, password }
          : { mechanism, username, password }
      : undefined;
  return { ...(ssl !== undefined && { ssl }), ...(sasl && { sasl }) };
};

/**
 * The partition count of `topic` (a contract topic name, without the deployment's prefix). The
 * revocations topic always has one: a subscriber's freshness comes from the heartbeat being the
 * newest message it has read, which vouches for the partition the heartbeat is in and no other.
 */
export const partitionsOf = (spec: KafkaSettings['KAFKA_TOPIC_PARTITIONS'], topic: string): number =>
  topic === TOPICS.revocations ? 1 : (spec.byTopic[topic] ?? spec.all);
