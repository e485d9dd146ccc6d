import { TOPICS } from '@grantline/events';

/**
 * How often a consumer commits its offsets in a topic no writer waits on. A writer's read-your-writes
 * (`awaitSubscribers`: the registry's and consent's answers) reads the consumers' committed offsets of
 * the registry and grants topics, so those are committed after every batch. The tokens topic carries
 * an event per token issued and nobody waits on its consumers' offsets: committing after each of its
 * batches cost the broker a write to `__consumer_offsets` per fetch, for every consumer of the topic.
 * Its offsets are committed at most this often, and when the consumer stops; a consumer that dies
 * re-reads at most this much, which idempotent projections and reactors pass over.
 */
export const UNAWAITED_COMMIT_INTERVAL_MS = 1_000;
export const UNAWAITED_TOPICS: readonly string[] = [TOPICS.tokens];
/**
 * The pace (`SubscriptionOptions.pacedMs`) of a subscription to the tokens topic alone, unless it
 * sets its own: 20 fetches a second per consumer and broker, busy or idle, whatever the token rate,
 * for at most 50 ms more latency.
 */
export const HIGH_VOLUME_PACE_MS = 50;
/** A pace is capped well below kafkajs's session timeout (30 s) and its heartbeat interval (3 s). */
export const MAX_PACE_MS = 1_000;
/**
 * A subscription's pace: its own `pacedMs` (at most `MAX_PACE_MS`), else `HIGH_VOLUME_PACE_MS` for
 * a subscription to the tokens topic alone, else none. Both buses pace alike.
 */
export const paceOf = (options: { topics: readonly string[]; pacedMs?: number | undefined }): number =>
  Math.min(
    MAX_PACE_MS,
    options.pacedMs ?? (options.topics.every((t) => UNAWAITED_TOPICS.includes(t)) ? HIGH_VOLUME_PACE_MS : 0),
  );
/** What a paced fetch gathers before the broker answers it early (far more than a pace's worth). */
export const PACED_MIN_BYTES = 1_048_576;

export type TopicPartitionOffset = { topic: string; partition: number; offset: string };

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
export class OffsetCommits {
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
