import { randomUUID } from 'node:crypto';
import { type Consumer, type IHeaders, Kafka, type KafkaConfig, logLevel } from 'kafkajs';
import { DenyList, type RevocationFact } from './deny-list.ts';
import type { RevocationSubscriber } from './subscriber.ts';

export interface RevocationTopicOptions {
  /** `host:port` of the brokers (`KAFKA_BROKERS`) */
  brokers: string[];
  /** the deployment's topic prefix (`KAFKA_TOPIC_PREFIX`, default none): the topic is `<prefix>grantline.revocations.v1` */
  topicPrefix?: string;
  /** how to reach the brokers where it takes more than their addresses (TLS, SASL, a socket factory, timeouts) */
  connection?: Pick<KafkaConfig, 'ssl' | 'sasl' | 'socketFactory' | 'connectionTimeout' | 'requestTimeout'>;
  now?: () => number;
}

const HEARTBEAT_TYPE = 'dev.grantline.RevocationHeartbeat.v1';

const header = (headers: IHeaders | undefined, name: string): string | undefined => {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first?.toString();
};

/**
 * Keeps a deny-list warm from `grantline.revocations.v1` on Kafka. Each instance reads the compacted
 * topic from the beginning under a consumer group of its own (offsets never committed: a restart
 * reads it all again, which is the bootstrap). Ready once it has read up to the end offsets the topic
 * had when it started and then seen a heartbeat; heartbeats replayed from the topic's past do not
 * count, nor does any heartbeat that was not the partition's newest message when fetched (a backlog
 * read after a partition heals), so a cut-off consumer turns stale within the freshness budget and
 * fresh again only once it has read everything published meanwhile.
 */
export const subscribeToRevocationTopic = (options: RevocationTopicOptions): RevocationSubscriber => {
  const denyList = new DenyList(options.now);
  const topic = `${options.topicPrefix ?? ''}grantline.revocations.v1`;
  const kafka = new Kafka({
    clientId: 'grantline-resource-server',
    brokers: options.brokers,
    ...options.connection,
    logLevel: logLevel.NOTHING,
  });
  const consumer: Consumer = kafka.consumer({ groupId: `grantline-resource-server-${randomUUID()}` });
  let settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  const bootstrapped = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  bootstrapped.catch(() => {});
  /** per partition, the offset the bootstrap must reach (the end when it started) */
  const remaining = new Map<number, bigint>();
  let caughtUp = false;

  const noteOffset = (partition: number, offset: string) => {
    const end = remaining.get(partition);
    if (end !== undefined && BigInt(offset) + 1n >= end) remaining.delete(partition);
    if (remaining.size === 0) caughtUp = true;
  };

  const start = async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const partitions = await admin.fetchTopicOffsets(topic);
      // The heartbeat vouches for the partition it is in: with facts in others, a consumer cut off
      // from one of their leaders would read heartbeats and call itself fresh while missing facts.
      if (partitions.length !== 1)
        throw new Error(
          `${topic} has ${partitions.length} partitions; the revocations topic must have exactly one`,
        );
      for (const { partition, high, low } of partitions)
        if (BigInt(high) > BigInt(low)) remaining.set(partition, BigInt(high));
    } finally {
      await admin.disconnect();
    }
    caughtUp = remaining.size === 0;
    consumer.on(consumer.events.CRASH, () => denyList.disconnected());
    consumer.on(consumer.events.DISCONNECT, () => denyList.disconnected());
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = BigInt(batch.highWatermark);
        for (const message of batch.messages) {
          const key = message.key?.toString();
          const heartbeat = header(message.headers, 'ce_type') === HEARTBEAT_TYPE || key === 'heartbeat';
          if (!heartbeat && message.value)
            denyList.apply(JSON.parse(message.value.toString()) as RevocationFact);
          const live = caughtUp;
          noteOffset(batch.partition, message.offset);
          // A heartbeat proves freshness only as the newest message of the partition when fetched.
          // One read from further back (the backlog after a partition heals, or a replay after the
          // consumer restarts) was sent before facts still ahead of it: counting it would call the
          // deny-list fresh while a revocation published since is unread.
          if (heartbeat && live && BigInt(message.offset) + 1n >= end) {
            denyList.heartbeat();
            settle?.resolve();
          }
        }
      },
    });
  };
  start().catch((error) => settle?.reject(error));

  return {
    denyList,
    ready: () => bootstrapped,
    close: async () => {
      await consumer.disconnect().catch(() => {});
      denyList.close();
    },
  };
};
