import { isRetriable, withRetry } from '@grantline/event-store';
import type { RecordedEvent } from '@grantline/events';
import { deadLetterTopic, TOPICS } from '@grantline/events';
import { ATTRS, type Logger, SPANS } from '@grantline/telemetry';
import {
  context,
  type Link,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  Kafka,
  type KafkaConfig,
  type KafkaMessage,
  logLevel,
} from 'kafkajs';
import { decodeEvent, encodeEvent, wantedBy } from './codec.ts';
import { BOUNDED_RETRIES_WARNING, SerialProducer } from './kafka-producer.ts';
import { headersAsStrings, instruments, lag, MAX_LINKS, tracer } from './kafka-telemetry.ts';
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

/**
 * How often a consumer commits its offsets in a topic no writer waits on. A writer's read-your-writes
 * (`awaitSubscribers`: the registry's and consent's answers) reads the consumers' committed offsets of
 * the registry and grants topics, so those are committed after every batch. The tokens topic carries
 * an event per token issued and nobody waits on its consumers' offsets: committing after each of its
 * batches cost the broker a write to `__consumer_offsets` per fetch, for every consumer of the topic.
 * Its offsets are committed at most this often, and when the consumer stops; a consumer that dies
 * re-reads at most this much, which idempotent projections and reactors pass over.
 */
const UNAWAITED_COMMIT_INTERVAL_MS = 1_000;
const UNAWAITED_TOPICS: readonly string[] = [TOPICS.tokens];

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
    const consumer = this.kafka.consumer({
      // namespaced like topics, so deployments (and parallel tests) sharing a cluster never share a group
      groupId: this.prefix + options.groupId,
      allowAutoTopicCreation: false,
      // How long the broker holds a fetch that finds nothing new. A message appended meanwhile
      // answers it at once, so this bounds idle polling, not latency: at 100 ms each of a service's
      // idle consumers cost ten fetches a second. Kafka's own default; a stop waits for it at most.
      maxWaitTimeInMs: 500,
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
      eachBatch: (payload) => this.handleBatch(options, commits, payload),
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

  private async handleBatch(
    options: SubscriptionOptions,
    commits: OffsetCommits,
    payload: EachBatchPayload,
  ): Promise<void> {
    const { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale } = payload;
    const lagKey = `${options.groupId}/${batch.topic}/${batch.partition}`;
    const attributes = {
      [ATTRS.consumer]: options.groupId,
      [ATTRS.topic]: batch.topic,
      [ATTRS.partition]: batch.partition,
    };
    const wanted = wantedBy(options.types);
    let handled: string | undefined;
    // one attempt in the group's current generation, as kafkajs's own commit after a batch (its
    // consumer.commitOffsets retries for up to a minute, which no batch or stop may wait for)
    commits.committer = (offsets) => commitOffsetsIfNecessary(offsets);
    try {
      for (const message of batch.messages) {
        if (!isRunning() || isStale()) break;
        if (wanted(message.headers)) await this.handleMessage(options, batch.topic, batch.partition, message);
        resolveOffset(message.offset);
        handled = message.offset;
        lag.set(lagKey, {
          value: Math.max(0, Number(batch.highWatermark) - Number(message.offset) - 1),
          attributes,
        });
        await heartbeat();
      }
    } catch (error) {
      // what was handled before the failure, in this batch and before it, is committed at once: a
      // restart resumes at the failed message
      if (handled !== undefined && !isStale()) commits.handled(batch.topic, batch.partition, handled);
      await commits.flush();
      throw error;
    }
    if (handled === undefined || isStale()) return;
    commits.handled(batch.topic, batch.partition, handled);
    // an awaited topic now; the others when due, or when this batch is the last before a stop
    if (commits.due(batch.topic) || !isRunning()) await commits.flush();
  }

  private async handleMessage(
    options: SubscriptionOptions,
    topic: string,
    partition: number,
    message: KafkaMessage,
  ): Promise<void> {
    const parent = propagation.extract(context.active(), headersAsStrings(message.headers));
    const span = tracer.startSpan(SPANS.consume(topic), { kind: SpanKind.CONSUMER }, parent);
    try {
      await context.with(trace.setSpan(parent, span), async () => {
        const event = decodeEvent(topic, partition, message);
        span.setAttribute(ATTRS.eventType, event.type);
        span.setAttribute(ATTRS.consumer, options.groupId);
        // Transient failures get a few quick retries here; a retriable one that persists propagates
        // (kafkajs restarts, then crashes: `onCrash`), anything else is dead-lettered below.
        await withRetry(() => options.handle(event), {
          attempts: options.handlerAttempts ?? 3,
          retryOn: () => true,
        });
      });
      instruments().processed.add(1, { [ATTRS.consumer]: options.groupId, [ATTRS.topic]: topic });
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
      if (isRetriable(error)) throw error;
      await this.deadLetter(options.groupId, topic, partition, message, error as Error);
    } finally {
      span.end();
    }
  }

  private async deadLetter(
    groupId: string,
    topic: string,
    partition: number,
    message: KafkaMessage,
    error: Error,
  ) {
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
  }

  private admin: Promise<Admin> | undefined;

  /**
   * Waits until every live consumer group of this deployment that reads `logical` (it has offsets
   * committed there) with a member whose Kafka client id starts with `clientIdPrefix` (Grantline's
   * own services, not a resource team's subscriber) has committed past what the topic holds now: a
   * writer's read-your-writes across services (the registry answers once every service that
   * projects clients has applied the change). Groups without members are not waited for; groups in
   * a rebalance are. Resolves true when caught up, false on timeout.
   */
  async awaitSubscribers(
    logical: string,
    timeoutMs: number,
    clientIdPrefix = 'grantline-',
  ): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    this.admin ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      return admin;
    })().catch((error: unknown) => {
      this.admin = undefined; // the next call connects afresh
      throw error;
    });
    const admin = await this.admin;
    const topic = this.topic(logical);
    const ends = await admin.fetchTopicOffsets(topic);
    const { groups } = await admin.listGroups();
    const ours = groups
      .filter((g) => g.protocolType === 'consumer' && g.groupId.startsWith(this.prefix))
      .map((g) => g.groupId);
    if (ours.length === 0) return true;
    const described = await admin.describeGroups(ours);
    // Grantline's live groups (a rebalance included: a new instance joining must not let a write
    // answer early); which of them read this topic, their committed offsets tell.
    const live = described.groups
      .filter(
        (g) =>
          g.state !== 'Empty' &&
          g.state !== 'Dead' &&
          g.members.some((m) => m.clientId.startsWith(clientIdPrefix)),
      )
      .map((g) => g.groupId);
    const committedOf = async (groupId: string) => {
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return new Map(offsets?.partitions.map((p) => [p.partition, Number(p.offset)]));
    };
    const initial = await Promise.all(live.map(async (g) => [g, await committedOf(g)] as const));
    let pending = initial.filter(([, c]) => [...c.values()].some((o) => o >= 0)).map(([g]) => g);
    for (;;) {
      const behind = await Promise.all(
        pending.map(async (groupId) => {
          const committed = await committedOf(groupId);
          return ends.some((e) => Number(e.high) > (committed.get(e.partition) ?? -1)) ? groupId : undefined;
        }),
      );
      pending = behind.filter((g): g is string => g !== undefined);
      if (pending.length === 0) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
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

type TopicPartitionOffset = { topic: string; partition: number; offset: string };

const byTopic = (offsets: readonly TopicPartitionOffset[]) => {
  const topics = new Map<string, { partition: number; offset: string }[]>();
  for (const { topic, partition, offset } of offsets)
    topics.set(topic, [...(topics.get(topic) ?? []), { partition, offset }]);
  return { topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })) };
};

/** a commit outside a batch (the timer, a stop) that has not landed by then counts as failed */
const COMMIT_TIMEOUT_MS = 2_000;

/**
 * When one consumer commits what it has handled: an awaited topic after each batch, the others at
 * most every `intervalMs` (a timer commits what is pending once the topic goes quiet), everything
 * pending at once before a failure or during a stop. Only forward: an offset at or below one already
 * committed, or of a partition no longer assigned to this member, is never committed again.
 */
class OffsetCommits {
  /** the next offset to read, by `topic/partition`, handled and not yet committed */
  private readonly pending = new Map<string, TopicPartitionOffset>();
  /** the highest offset committed, by `topic/partition` */
  private readonly committed = new Map<string, bigint>();
  /** this member's partitions, by topic, as of its last join */
  private assignment: Record<string, number[]> | undefined;
  private lastCommit = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** set by a stop: every batch that ends commits at once */
  stopping = false;
  /** commits in the group's current generation: set by each batch */
  committer: ((offsets: ReturnType<typeof byTopic>) => Promise<void>) | undefined;

  constructor(
    private readonly unawaited: ReadonlySet<string>,
    private readonly intervalMs: number,
    private readonly failed: (error: unknown) => void,
  ) {}

  handled(topic: string, partition: number, offset: string): void {
    this.pend({ topic, partition, offset: (BigInt(offset) + 1n).toString() });
    if (this.unawaited.has(topic)) this.schedule();
  }

  /** whether what is pending in `topic` is to be committed now */
  due(topic: string): boolean {
    return this.stopping || !this.unawaited.has(topic) || Date.now() - this.lastCommit >= this.intervalMs;
  }

  /** this member's partitions after a (re)join: what is pending elsewhere is forgotten */
  assigned(assignment: Record<string, number[]>): void {
    this.assignment = assignment;
    for (const [key, p] of this.pending) if (!this.owns(p)) this.pending.delete(key);
  }

  /**
   * Commits everything pending. A failure is logged and what it held is pending again (unless a
   * later offset replaced it), for the next batch or the timer: re-read after a restart at worst.
   */
  async flush(): Promise<void> {
    const commit = this.committer;
    if (this.pending.size === 0 || !commit) return;
    const offsets = [...this.pending.values()];
    this.pending.clear();
    this.lastCommit = Date.now();
    clearTimeout(this.timer);
    this.timer = undefined;
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        commit(byTopic(offsets)),
        new Promise<never>((_, reject) => {
          timeout = setTimeout(() => reject(new Error('offset commit timed out')), COMMIT_TIMEOUT_MS);
          timeout.unref();
        }),
      ]);
      for (const { topic, partition, offset } of offsets) {
        const key = `${topic}/${partition}`;
        if (BigInt(offset) > (this.committed.get(key) ?? -1n)) this.committed.set(key, BigInt(offset));
      }
    } catch (error) {
      this.failed(error);
      for (const p of offsets) this.pend(p, false);
      this.schedule();
    } finally {
      clearTimeout(timeout);
    }
  }

  /** no more timed commits (a stop, a crash): batches and `flush` still commit */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** pending, if it moves the partition forward and the partition is this member's */
  private pend(p: TopicPartitionOffset, replace = true): void {
    const key = `${p.topic}/${p.partition}`;
    if (BigInt(p.offset) <= (this.committed.get(key) ?? -1n) || !this.owns(p)) return;
    if (replace || !this.pending.has(key)) this.pending.set(key, p);
  }

  private owns({ topic, partition }: TopicPartitionOffset): boolean {
    return !this.assignment || (this.assignment[topic] ?? []).includes(partition);
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    const wait = Math.max(0, this.lastCommit + this.intervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, wait);
    this.timer.unref();
  }
}
