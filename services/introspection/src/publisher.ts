import { randomUUID } from 'node:crypto';
import type { Clock } from '@grantline/clock';
import { REVOCATION_HEARTBEAT_KEY, type RecordedEvent } from '@grantline/events';
import type { MessageBus } from '@grantline/message-bus';
import type { RevocationCache } from '@grantline/revocation-cache';
import type { Logger } from '@grantline/telemetry';
import type { FactLog, FactMessage } from './projections/facts.ts';

/** What the HTTP stream sends: each fact once it is on the topic, and the heartbeats. */
export type StreamItem =
  | { type: 'fact'; fact: FactMessage }
  | { type: 'heartbeat'; time: string; lastSequence: number };

/**
 * A deny-list key that says the cache holds every live fact. Redis restarted empty has lost it: the
 * next check (every heartbeat, and readiness) copies the live facts back before setting it again.
 */
const WARM_KEY = 'meta:rebuilt';
const WARM_TTL_SECONDS = 86_400;
/** facts numbered and sent per round of a publication pass */
const PUBLICATION_BATCH = 500;

/**
 * Publishes the facts the projector records to `grantline.revocations.v1` (at least once, oldest
 * first, each keyed by its deny-list key), a heartbeat every `heartbeatMs`, and both to the HTTP
 * stream's listeners; keeps the deny-list whole after a cache that lost its data.
 */
export class RevocationPublisher {
  private readonly listeners = new Set<(item: StreamItem) => void>();
  private timers: NodeJS.Timeout[] = [];
  /** the publication passes, one at a time */
  private chain: Promise<void> = Promise.resolve();
  /** the pass asked for and not yet begun: later asks share it */
  private queued: Promise<void> | undefined;
  private lastSequence = 0;
  private warm = false;
  /** counts the cache's misses: a rebuild that saw one happen meanwhile is not warm */
  private misses = 0;

  constructor(
    private readonly deps: {
      bus: MessageBus;
      facts: FactLog;
      cache: () => RevocationCache;
      logger: Logger;
      clock: Clock;
      heartbeatMs: number;
    },
  ) {}

  async start(): Promise<void> {
    this.lastSequence = await this.deps.facts.lastSequence();
    await this.ensureWarm().catch((error: unknown) =>
      this.deps.logger.warn({ err: error }, 'revocation cache unavailable; rebuilding it once it answers'),
    );
    this.timers.push(
      setInterval(() => void this.heartbeat(), this.deps.heartbeatMs),
      // the safety net: `soon` is called once each projected event has committed
      setInterval(() => this.soon(), 250),
    );
    for (const t of this.timers) t.unref();
    this.soon();
  }

  /** A publication pass now (and again after the one under way). */
  soon(): void {
    this.pass().catch(() => {});
  }

  /** A publication pass that begins after this call (sharing one already asked for); rejects if it fails. */
  private pass(): Promise<void> {
    if (this.queued) return this.queued;
    const pass = this.chain.then(() => {
      this.queued = undefined;
      return this.publish();
    });
    this.queued = pass;
    this.chain = pass.catch((error: unknown) =>
      this.deps.logger.warn({ err: error }, 'publishing revocations failed; retrying'),
    );
    return pass;
  }

  /** Listens to what is published from now on; returns the unsubscribe. */
  listen(listener: (item: StreamItem) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The cache missed a fact (it could not be reached): copy every live fact again at the next check. */
  cacheFailed(error: unknown): void {
    if (this.warm) this.deps.logger.warn({ err: error }, 'revocation cache missed a fact; rebuilding it');
    this.warm = false;
    this.misses++;
  }

  /** Throws unless the cache answers and holds every live fact (rebuilding it first when it lost them). */
  async ensureWarm(): Promise<void> {
    const cache = this.deps.cache();
    if (this.warm && (await cache.isRevoked([WARM_KEY]))) return;
    this.warm = false;
    const misses = this.misses;
    const now = new Date(this.deps.clock.now());
    const live = await this.deps.facts.liveRevocations(now);
    for (let i = 0; i < live.length; i += 1_000) await cache.revoke(live.slice(i, i + 1_000));
    await cache.revoke([{ key: WARM_KEY, ttlSeconds: WARM_TTL_SECONDS }]);
    this.deps.logger.info({ facts: live.length }, 'revocation cache rebuilt from the recorded facts');
    // a write that failed during the rebuild may be of a fact recorded after its read
    if (this.misses !== misses) throw new Error('the revocation cache missed a fact during its rebuild');
    this.warm = true;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.chain;
    this.listeners.clear();
  }

  private message(type: string, key: string, data: unknown, time: Date): RecordedEvent {
    return {
      id: randomUUID(),
      type,
      data,
      streamId: key,
      streamVersion: 1,
      position: '0',
      time,
      source: '/grantline/introspection',
      metadata: {},
    };
  }

  /**
   * Publishes what is unpublished, then passes on to the stream's listeners every fact published
   * since the last pass, by this instance or another (numbers commit in order: none is passed over).
   */
  private async publish(): Promise<void> {
    const send = (facts: FactMessage[]) =>
      this.deps.bus.publish(
        facts.map((f) => this.message('RevocationFact', f.key, f, new Date(f.revokedAt))),
      );
    while ((await this.deps.facts.publish(send, PUBLICATION_BATCH)).more) {
      // until a round finds less than a full batch: nothing is left that was recorded before the pass
    }
    for (;;) {
      const facts = await this.deps.facts.publishedAfter(this.lastSequence);
      for (const fact of facts) {
        this.lastSequence = fact.sequence;
        this.emit({ type: 'fact', fact });
      }
      if (facts.length < 1_000) return;
    }
  }

  /**
   * A heartbeat vouches that every fact recorded before it was published ahead of it: so it follows
   * a publication pass that began after its time, and is not sent at all when that pass fails
   * (Postgres or Kafka unreachable). Subscribers then turn stale instead of trusting a deny-list
   * that lacks what could not be published. Redis plays no part: it is a copy, not the feed.
   */
  private async heartbeat(): Promise<void> {
    const time = new Date(this.deps.clock.now());
    try {
      await this.pass();
    } catch {
      return; // said by the pass
    }
    const beat = { time: time.toISOString(), lastSequence: this.lastSequence };
    this.emit({ type: 'heartbeat', ...beat });
    try {
      await this.deps.bus.publish([
        this.message('RevocationHeartbeat', REVOCATION_HEARTBEAT_KEY, beat, time),
      ]);
      await this.ensureWarm();
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'revocation heartbeat or cache check failed');
    }
  }

  private emit(item: StreamItem): void {
    for (const listener of this.listeners) listener(item);
  }
}
