import { setTimeout as sleep } from 'node:timers/promises';
import { isRetriable, withRetry } from '@grantline/event-store';
import { deadLetterTopic, type RecordedEvent } from '@grantline/events';
import type { Logger } from '@grantline/telemetry';
import type { KafkaMessage } from 'kafkajs';
import type pg from 'pg';
import { decodeEvent, encodeEvent, wantedBy } from './codec.ts';
import { paceOf } from './kafka-offsets.ts';
import type { ConsumedEvent, MessageBus, Subscription, SubscriptionOptions } from './port.ts';
import { handledTogether } from './together.ts';

export interface InProcessBusOptions {
  /** the embedded database (PGlite through `pglitePool`), which keeps the log and the group offsets */
  pool: pg.Pool;
  logger: Pick<Logger, 'warn'>;
  /** prepended to every topic name, as on Kafka */
  topicPrefix?: string;
}

const SCHEMA = 'bus';
const BATCH = 200;

/**
 * The message bus of the embedded mode: Kafka's contract without a broker. Each topic is one ordered
 * log (so every key's messages stay in order), kept in the embedded database with each consumer
 * group's offset, so a restart loses nothing and resumes each group where it stopped (at least once:
 * an offset moves after its message is handled). Messages are the same CloudEvents as on Kafka
 * (`encodeEvent`/`decodeEvent`). One subscriber per group receives; another of the same group waits
 * as a standby, as a second consumer of a one-partition topic does. Subscribers are woken in process
 * when something is published.
 */
export class InProcessMessageBus implements MessageBus {
  private readonly prefix: string;
  private ready: Promise<void> | undefined;
  /** each subscriber's waker, with the topics it reads */
  private readonly wakers = new Map<() => void, readonly string[]>();
  /** the active member of each consumer group, and the topics it reads */
  private readonly groups = new Map<string, { member: symbol; topics: readonly string[] }>();
  private closed = false;

  constructor(private readonly options: InProcessBusOptions) {
    this.prefix = options.topicPrefix ?? '';
  }

  readonly topic = (logical: string): string => this.prefix + logical;

  private schema(): Promise<void> {
    this.ready ??= this.options.pool
      .query(
        `CREATE SCHEMA IF NOT EXISTS ${SCHEMA};
         CREATE TABLE IF NOT EXISTS ${SCHEMA}.messages (
           seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
           topic text NOT NULL, key text, value text, headers jsonb NOT NULL,
           published_at timestamptz NOT NULL DEFAULT now());
         CREATE INDEX IF NOT EXISTS messages_topic_seq ON ${SCHEMA}.messages (topic, seq);
         CREATE TABLE IF NOT EXISTS ${SCHEMA}.offsets (
           group_id text NOT NULL, topic text NOT NULL, seq bigint NOT NULL,
           PRIMARY KEY (group_id, topic))`,
      )
      .then(() => undefined);
    return this.ready;
  }

  /** topics kept like Kafka's compacted topics: only the newest message of each key stays in the log */
  private readonly compacted = new Set<string>();

  /** Topics need no creation here; a compacted one keeps only each key's newest message, as on Kafka. */
  async ensureTopics(topics: readonly { topic: string; compacted?: boolean }[]): Promise<void> {
    for (const { topic, compacted } of topics) if (compacted) this.compacted.add(this.topic(topic));
    await this.schema();
  }

  /** Durable once it resolves (the log's insert has committed). Key = stream id. */
  async publish(events: readonly RecordedEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.schema();
    const rows = events.map((event) => {
      const { topic, message } = encodeEvent(event);
      const headers = Object.fromEntries(
        Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
      );
      return [this.topic(topic), String(message.key), String(message.value), JSON.stringify(headers)];
    });
    await this.options.pool.query(
      `INSERT INTO ${SCHEMA}.messages (topic, key, value, headers)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[])`,
      [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3])],
    );
    const compacted = rows.filter((r) => this.compacted.has(r[0]!));
    // compaction at once rather than in the background: a group past these offsets loses nothing, and
    // a new one reads each key's newest message only (a heartbeat a second does not grow the log)
    if (compacted.length > 0)
      await this.options.pool.query(
        `DELETE FROM ${SCHEMA}.messages m USING unnest($1::text[], $2::text[]) AS c(topic, key)
         WHERE m.topic = c.topic AND m.key = c.key
           AND m.seq < (SELECT max(seq) FROM ${SCHEMA}.messages n WHERE n.topic = c.topic AND n.key = c.key)`,
        [compacted.map((r) => r[0]), compacted.map((r) => r[1])],
      );
    const published = new Set(rows.map((r) => r[0]));
    for (const [wake, topics] of this.wakers) if (topics.some((t) => published.has(t))) wake();
  }

  async subscribe(options: SubscriptionOptions): Promise<Subscription> {
    await this.schema();
    const groupId = this.prefix + options.groupId;
    const topics = options.topics.map(this.topic);
    const member = Symbol(groupId);
    const pacedMs = paceOf(options);
    let stopped = false;
    let wake: (() => void) | undefined;
    let woken = false;
    const waker = () => {
      woken = true;
      wake?.();
    };
    this.wakers.set(waker, topics);
    const ending = () => stopped || this.closed;
    /** until `ms` have passed or, `wakeable`, something is published; always until a stop */
    const wait = (ms: number, wakeable: boolean) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          if (!wakeable && !ending()) return;
          clearTimeout(timer);
          resolve();
        };
      }).finally(() => {
        wake = undefined;
      });
    const idle = async (ms: number) => {
      // a stop during a drain finds no wait to end: none is begun after it
      if (!woken && !ending()) await wait(ms, true);
      woken = false;
    };
    const loop = async () => {
      while (!ending()) {
        // one active member per group; another stands by until the active one stops
        const active = this.groups.get(groupId);
        if (active && active.member !== member) {
          await idle(200);
          continue;
        }
        if (!active) this.groups.set(groupId, { member, topics });
        try {
          const started = performance.now();
          const handled = await this.drain(groupId, topics, options, ending);
          // Short of a full batch, everything published before the read is handled, and anything
          // published since has woken this subscriber: it reads again when woken, not at once. Paced
          // (`pacedMs`), it reads at most once a pace however often it is woken, as a paced Kafka
          // fetch does: a topic written hundreds of times a second costs it a read per pace, not per
          // message (each read and each offset saved is a statement on the embedded database).
          if (handled < BATCH) {
            await idle(1_000);
            const rest = started + pacedMs - performance.now();
            if (rest > 0 && !ending()) await wait(rest, false);
          }
        } catch (error) {
          if (isRetriable(error)) {
            stopped = true;
            options.onCrash(error as Error);
            return;
          }
          this.options.logger.warn({ err: error, group: groupId }, 'in-process consumer failed; retrying');
          await sleep(200);
        }
      }
    };
    const running = loop().finally(() => {
      if (this.groups.get(groupId)?.member === member) this.groups.delete(groupId);
      for (const other of this.wakers.keys()) other(); // a standby takes over
    });
    return {
      stop: async () => {
        stopped = true;
        this.wakers.delete(waker);
        wake?.();
        await running;
      },
    };
  }

  /**
   * Handles the group's next messages across its topics, in log order; returns how many. Each topic
   * is read from its offset on the (topic, seq) index, so a long log costs nothing; the offsets move
   * once per batch, after its messages were handled (at least once: a crash in between redelivers).
   */
  private async drain(
    groupId: string,
    topics: readonly string[],
    options: SubscriptionOptions,
    stopped: () => boolean,
  ): Promise<number> {
    const { rows } = await this.options.pool.query<{
      seq: string;
      topic: string;
      key: string | null;
      value: string | null;
      headers: Record<string, string>;
      published_at: Date;
    }>(
      `SELECT m.seq, m.topic, m.key, m.value, m.headers, m.published_at
       FROM unnest($2::text[]) AS t(topic)
       LEFT JOIN ${SCHEMA}.offsets o ON o.group_id = $1 AND o.topic = t.topic
       CROSS JOIN LATERAL (
         SELECT * FROM ${SCHEMA}.messages m
         WHERE m.topic = t.topic AND m.seq > coalesce(o.seq, 0)
         ORDER BY m.seq LIMIT ${BATCH}) m
       ORDER BY m.seq LIMIT ${BATCH}`,
      [groupId, topics],
    );
    const done = new Map<string, string>();
    let handled = 0;
    const messageOf = (row: (typeof rows)[number]) =>
      ({
        key: row.key === null ? null : Buffer.from(row.key),
        value: row.value === null ? null : Buffer.from(row.value),
        headers: row.headers,
        offset: row.seq,
        timestamp: String(row.published_at.getTime()),
        attributes: 0,
      }) as unknown as KafkaMessage;
    const wanted = wantedBy(options.types);
    try {
      // runs of consecutive rows of one topic: through `handleMany` together when the subscriber has it
      for (let i = 0; i < rows.length; ) {
        if (stopped()) break;
        const topic = rows[i]!.topic;
        let end = i + 1;
        while (options.handleMany && end < rows.length && rows[end]!.topic === topic) end++;
        const run = rows.slice(i, end).map(messageOf);
        const chosen = run.filter((m) => wanted(m.headers));
        if (!(chosen.length > 1 && (await this.handleTogether(options, topic, chosen))))
          for (const message of chosen) await this.handle(options, topic, message);
        done.set(topic, run.at(-1)!.offset);
        handled += run.length;
        i = end;
      }
    } finally {
      if (done.size > 0)
        await this.options.pool.query(
          `INSERT INTO ${SCHEMA}.offsets (group_id, topic, seq)
           SELECT $1, * FROM unnest($2::text[], $3::bigint[])
           ON CONFLICT (group_id, topic) DO UPDATE SET seq = excluded.seq`,
          [groupId, [...done.keys()], [...done.values()]],
        );
    }
    return handled;
  }

  /** Several messages through `handleMany` at once; false when they must go one by one (see `handledTogether`). */
  private async handleTogether(
    options: SubscriptionOptions,
    topic: string,
    messages: readonly KafkaMessage[],
  ): Promise<boolean> {
    let events: ConsumedEvent[];
    try {
      events = messages.map((m) => decodeEvent(topic, 0, m));
    } catch {
      return false; // one by one parks the message that does not decode
    }
    return handledTogether(options, events);
  }

  /** As on Kafka: quick retries, a retriable failure that persists propagates, anything else is skipped. */
  private async handle(options: SubscriptionOptions, topic: string, message: KafkaMessage) {
    try {
      const event = decodeEvent(topic, 0, message);
      await withRetry(() => options.handle(event), {
        attempts: options.handlerAttempts ?? 3,
        retryOn: () => true,
      });
    } catch (error) {
      if (isRetriable(error)) throw error;
      const reason = `${(error as Error).name}: ${(error as Error).message}`.slice(0, 1_000);
      this.options.logger.warn(
        { topic, offset: message.offset, consumer: options.groupId, reason },
        'message dead-lettered',
      );
      // parked on the topic's dead-letter topic, as on Kafka: kept for an operator, not lost
      await this.options.pool.query(
        `INSERT INTO ${SCHEMA}.messages (topic, key, value, headers) VALUES ($1, $2, $3, $4)`,
        [
          deadLetterTopic(topic),
          message.key?.toString() ?? null,
          message.value?.toString() ?? null,
          JSON.stringify({
            ...message.headers,
            'x-grantline-dlq-reason': reason,
            'x-grantline-dlq-consumer': options.groupId,
            'x-grantline-dlq-origin': `${topic}/0/${message.offset}`,
          }),
        ],
      );
    }
  }

  /** Whether every subscriber of `logical` has handled what it holds now (read-your-writes). */
  async awaitSubscribers(logical: string, timeoutMs: number): Promise<boolean> {
    await this.schema();
    const deadline = Date.now() + timeoutMs;
    const topic = this.topic(logical);
    for (;;) {
      const readers = [...this.groups].filter(([, g]) => g.topics.includes(topic)).map(([id]) => id);
      if (readers.length === 0) return true;
      const { rows } = await this.options.pool.query<{ behind: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM unnest($2::text[]) AS g(group_id)
           LEFT JOIN ${SCHEMA}.offsets o ON o.group_id = g.group_id AND o.topic = $1
           WHERE coalesce(o.seq, 0) < (SELECT coalesce(max(seq), 0) FROM ${SCHEMA}.messages WHERE topic = $1)) AS behind`,
        [topic, readers],
      );
      if (!rows[0]?.behind) return true;
      if (Date.now() >= deadline) return false;
      await sleep(5);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const wake of this.wakers.keys()) wake();
  }
}
