import { isRetriable, withRetry } from '@grantline/event-store';
import type { RecordedEvent } from '@grantline/events';
import { deadLetterTopic } from '@grantline/events';
import { ATTRS, type Logger, SPANS } from '@grantline/telemetry';
import { type Link, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type Admin, type Consumer, Kafka, type KafkaConfig, logLevel } from 'kafkajs';
import { encodeEvent } from './codec.ts';
import { type DeadLetter, handleKafkaBatch } from './kafka-batches.ts';
import {
  OffsetCommits,
  PACED_MIN_BYTES,
  paceOf,
  UNAWAITED_COMMIT_INTERVAL_MS,
  UNAWAITED_TOPICS,
} from './kafka-offsets.ts';
import { BOUNDED_RETRIES_WARNING, SerialProducer } from './kafka-producer.ts';
import { subscribersCaughtUp } from './kafka-subscribers.ts';
import { instruments, MAX_LINKS, tracer } from './kafka-telemetry.ts';
import type { MessageBus, Subscription, SubscriptionOptions } from './port.ts';

export interface KafkaBusOptions {
  brokers: readonly string[];
  clientId: string;
  logger: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
  /** how long one publish may retry before it fails back to the caller (the relay retries on its own) */
  publishTimeoutMs?: number;
  /** prepended to every topic name: isolates deployments sharing a cluster (and parallel tests) */
  topicPrefix?: string;
  /** TLS to the brokers: `true` (the system's CAs) or node TLS options (a private CA, a client certificate) */
  ssl?: KafkaConfig['ssl'];
  /** SASL authentication (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); use with `ssl`, PLAIN sends the password as is */
  sasl?: KafkaConfig['sasl'];
  /** how often consumers commit offsets of topics no writer waits on (`UNAWAITED_COMMIT_INTERVAL_MS`) */
  unawaitedCommitIntervalMs?: number;
}

// kafkajs logs every retried request failure as an error; what matters surfaces as a thrown error
// (handled by the relay and the consumer runtime), so its own errors are warnings here.
const kafkaLogLevel = (level: logLevel) =>
  level === logLevel.ERROR || level === logLevel.WARN ? 'warn' : level === logLevel.INFO ? 'info' : 'debug';

/** The message bus on Apache Kafka (kafkajs). */
export class KafkaMessageBus implements MessageBus {
  readonly kafka: Kafka;
  private readonly producer: SerialProducer;
  private readonly consumers = new Set<Consumer>();
  /** each live subscription's offsets not yet committed */
  private readonly subscriptions = new Set<OffsetCommits>();
  private readonly prefix: string;

  constructor(private readonly options: KafkaBusOptions) {
    if (options.brokers.length === 0) throw new Error('KafkaMessageBus needs at least one broker');
    this.prefix = options.topicPrefix ?? '';
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: [...options.brokers],
      logLevel: logLevel.WARN,
      logCreator:
        () =>
        ({ level, log }) => {
          const { message, ...extra } = log;
          if (typeof message === 'string' && message.startsWith(BOUNDED_RETRIES_WARNING)) return;
          options.logger[kafkaLogLevel(level)]({ kafka: extra }, `kafka: ${message}`);
        },
      retry: { initialRetryTime: 100, retries: 5, maxRetryTime: 2_000 },
      ...(options.ssl !== undefined && { ssl: options.ssl }),
      ...(options.sasl && { sasl: options.sasl }),
    });
    this.producer = new SerialProducer(this.kafka, options.publishTimeoutMs ?? 5_000);
  }

  /** Creates topics that do not exist yet; `compacted` ones keep the latest message per key forever. */
  async ensureTopics(
    topics: readonly { topic: string; partitions?: number; compacted?: boolean }[],
  ): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    const wanted = topics.map((t) => ({ ...t, topic: this.topic(t.topic) }));
    try {
      // Creation under load can answer UNKNOWN_TOPIC_OR_PARTITION or race with another creator:
      // retry until every topic is there and has metadata.
      await withRetry(
        async () => {
          const existing = new Set(await admin.listTopics());
          const missing = wanted.filter((t) => !existing.has(t.topic));
          if (missing.length > 0) {
            await admin.createTopics({
              topics: missing.map((t) => ({
                topic: t.topic,
                numPartitions: t.partitions ?? 1,
                configEntries: t.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : [],
              })),
            });
          }
          await admin.fetchTopicMetadata({ topics: wanted.map((t) => t.topic) });
        },
        {
          attempts: 20,
          initialDelayMs: 100,
          retryOn: (e) => isRetriable(e) || (e as { type?: string }).type === 'TOPIC_ALREADY_EXISTS',
        },
      );
    } finally {
      await admin.disconnect();
    }
  }

  /** Publishes with acks from all in-sync replicas; resolves only when Kafka has them. Key = stream id. */
  async publish(events: readonly RecordedEvent[]): Promise<void> {
    if (events.length === 0) return;
    const byTopic = new Map<string, ReturnType<typeof encodeEvent>['message'][]>();
    for (const event of events) {
      const { topic, message } = encodeEvent(event);
      const list = byTopic.get(this.topic(topic)) ?? [];
      list.push(message);
      byTopic.set(this.topic(topic), list);
    }
    // one span per batch, linked to the trace of each event it carries (messaging conventions for
    // batches); each message's own headers carry its event's trace on to the consumers
    const links: Link[] = [];
    for (const event of events) {
      if (links.length >= MAX_LINKS) break;
      const linked = event.metadata.traceparent
        ? trace.getSpanContext(propagation.extract(ROOT_CONTEXT, { traceparent: event.metadata.traceparent }))
        : undefined;
      if (linked) links.push({ context: linked });
    }
    const attributes = {
      [ATTRS.messagingSystem]: 'kafka',
      [ATTRS.messagingOperation]: 'send',
      [ATTRS.batchSize]: events.length,
    };
    await tracer.startActiveSpan(
      SPANS.relayPublish,
      { kind: SpanKind.PRODUCER, links, attributes },
      async (span) => {
        try {
          await this.producer.send((producer) =>
            producer.sendBatch({
              acks: -1,
              topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
            }),
          );
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          throw error;
        } finally {
          span.end();
        }
      },
    );
  }

  async subscribe(options: SubscriptionOptions): Promise<Subscription> {
    const pacedMs = paceOf(options);
    const consumer = this.kafka.consumer({
      // namespaced like topics, so deployments (and parallel tests) sharing a cluster never share a group
      groupId: this.prefix + options.groupId,
      allowAutoTopicCreation: false,
      // How long the broker holds a fetch that finds nothing new. A message appended meanwhile
      // answers it at once, so this bounds idle polling, not latency: at 100 ms each of a service's
      // idle consumers cost ten fetches a second. Kafka's own default; a stop waits for it at most.
      // Paced (`pacedMs`): the broker holds every fetch that long unless a megabyte has gathered
      // (Kafka's fetch.min.bytes and fetch.max.wait.ms), per broker, whatever the message rate.
      ...(pacedMs > 0 ? { maxWaitTimeInMs: pacedMs, minBytes: PACED_MIN_BYTES } : { maxWaitTimeInMs: 500 }),
      // After these restarts the consumer crashes for good and `onCrash` decides (exit, by default).
      // Transient broker states (a coordinator loading after a restart) get ~1 min of retries first.
      retry: {
        retries: 10,
        initialRetryTime: 300,
        maxRetryTime: 10_000,
        restartOnFailure: async () => false,
      },
    });
    await consumer.connect();
    // A topic created moments ago may not be in the broker's metadata yet (UNKNOWN_TOPIC_OR_PARTITION).
    await withRetry(
      () =>
        consumer.subscribe({
          topics: options.topics.map(this.topic),
          fromBeginning: options.fromBeginning ?? true,
        }),
      { attempts: 10, initialDelayMs: 100 },
    );
    // kafkajs gives up at once (a crash) when the first join meets no group coordinator, which is
    // what a fresh broker answers while it creates __consumer_offsets: wait for one first.
    await withRetry(() => consumer.describeGroup(), { attempts: 30, initialDelayMs: 200, maxDelayMs: 2_000 });
    const commits = new OffsetCommits(
      new Set(UNAWAITED_TOPICS.map(this.topic)),
      this.options.unawaitedCommitIntervalMs ?? UNAWAITED_COMMIT_INTERVAL_MS,
      (error) => this.options.logger.warn({ err: error }, 'committing offsets failed; retrying'),
    );
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) return;
      commits.close();
      options.onCrash(payload.error);
    });
    // a partition handed to another member is no longer ours to commit
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => commits.assigned(payload.memberAssignment));
    await consumer.run({
      // committed here instead: after each batch of an awaited topic, at intervals for the others
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => handleKafkaBatch(this.deadLetter, options, commits, payload),
    });
    this.consumers.add(consumer);
    this.subscriptions.add(commits);
    return {
      stop: async () => {
        this.consumers.delete(consumer);
        this.subscriptions.delete(commits);
        // what is pending while still a member of the group (disconnecting leaves it); a batch that
        // ends meanwhile commits its own at once
        commits.stopping = true;
        commits.close();
        await commits.flush();
        await consumer.disconnect();
      },
    };
  }

  private readonly deadLetter: DeadLetter = async (groupId, topic, partition, message, error) => {
    this.options.logger.warn(
      { topic, partition, offset: message.offset, consumer: groupId, reason: error.message },
      'message dead-lettered',
    );
    await this.producer.send((producer) =>
      producer.send({
        topic: deadLetterTopic(topic),
        acks: -1,
        messages: [
          {
            key: message.key,
            value: message.value,
            headers: {
              ...message.headers,
              'x-grantline-dlq-reason': `${error.name}: ${error.message}`.slice(0, 1_000),
              'x-grantline-dlq-consumer': groupId,
              'x-grantline-dlq-origin': `${topic}/${partition}/${message.offset}`,
            },
          },
        ],
      }),
    );
    instruments().deadLettered.add(1, { [ATTRS.consumer]: groupId, [ATTRS.topic]: topic });
  };

  private admin: Promise<Admin> | undefined;

  /**
   * Waits until every live consumer group of this deployment that reads `logical` (it has offsets
   * committed there) with a member whose Kafka client id starts with `clientIdPrefix` (Grantline's
   * own services, not a resource team's subscriber) has committed past what the topic holds now: a
   * writer's read-your-writes across services (the registry answers once every service that
   * projects clients has applied the change). Groups without members are not waited for; groups in
   * a rebalance are. Resolves true when caught up, false on timeout. Refuses the topics whose
   * consumers commit at intervals (`UNAWAITED_TOPICS`): their offsets lag what was handled.
   */
  async awaitSubscribers(
    logical: string,
    timeoutMs: number,
    clientIdPrefix = 'grantline-',
  ): Promise<boolean> {
    if (UNAWAITED_TOPICS.includes(logical))
      throw new Error(`${logical}: its consumers commit at intervals, so no write may wait on them`);
    const deadline = Date.now() + timeoutMs;
    this.admin ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      return admin;
    })().catch((error: unknown) => {
      this.admin = undefined; // the next call connects afresh
      throw error;
    });
    return subscribersCaughtUp(await this.admin, this.topic(logical), this.prefix, clientIdPrefix, deadline);
  }

  /** The physical topic of a logical one. */
  readonly topic = (logical: string): string => this.prefix + logical;

  async close(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    await admin?.then((a) => a.disconnect()).catch(() => {});
    for (const c of this.subscriptions) {
      c.stopping = true;
      c.close();
    }
    await Promise.all([...this.subscriptions].map((c) => c.flush()));
    this.subscriptions.clear();
    await Promise.all([...this.consumers].map((c) => c.disconnect()));
    this.consumers.clear();
    await this.producer.close();
  }
}
