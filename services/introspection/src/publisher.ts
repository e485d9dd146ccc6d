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
/** how often a pass retries what is unsent, and the stream looks for facts other instances sent */
const SAFETY_NET_MS = 250;

/**
 * A task run one at a time: asked while it runs, it runs once more after (however often it was
 * asked meanwhile: those asks share that run). A run rejects if it fails; the next one still runs.
 */
class Coalesced {
  private chain: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;

  constructor(
    private readonly task: () => Promise<void>,
    private readonly failed: (error: unknown) => void,
  ) {}

  /** A run that begins after this call (sharing one already asked for). */
  run(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.chain.then(() => {
      this.queued = undefined;
      return this.task();
    });
    this.queued = next;
    this.chain = next.catch(this.failed);
    return next;
  }

  /** Resolves once the runs asked for so far have ended. */
  idle(): Promise<void> {
    return this.chain;
  }
}

/**
 * Publishes the facts the projector records to `grantline.revocations.v1` (at least once, oldest
 * first, each keyed by its deny-list key), a heartbeat every `heartbeatMs`, and both to the HTTP
 * stream's listeners; keeps the deny-list whole after a cache that lost its data.
 */
export class RevocationPublisher {
  private readonly listeners = new Set<(item: StreamItem) => void>();
  private timers: NodeJS.Timeout[] = [];
  /** publication passes: the facts the topic lacks, sent (what a revocation waits for) */
  private readonly sends: Coalesced;
  /** the stream's passes: what the topic has now (by any instance) passed on to the listeners */
  private readonly passesOn: Coalesced;
  private lastSequence = 0;
  private stopped = false;
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
  ) {
    const failed = (what: string) => (error: unknown) =>
      deps.logger.warn({ err: error }, `${what}; retrying`);
    this.sends = new Coalesced(() => this.sendUnsent(), failed('publishing revocations failed'));
    this.passesOn = new Coalesced(() => this.passOn(), failed('passing revocations on to the stream failed'));
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.lastSequence = await this.deps.facts.lastSequence();
    await this.ensureWarm().catch((error: unknown) =>
      this.deps.logger.warn({ err: error }, 'revocation cache unavailable; rebuilding it once it answers'),
    );
    this.timers.push(
      // a pass every heartbeat, which retries a failed send
      setInterval(() => void this.heartbeat(), this.deps.heartbeatMs),
      // the safety net (a failed send retried, what an instance left unsent), and the stream's poll
      // for the facts other instances sent (this instance's reach it at once)
      setInterval(() => this.soon(), SAFETY_NET_MS),
    );
    for (const t of this.timers) t.unref();
    this.soon();
  }

  /**
   * A fact has committed: a publication pass now (after the one under way, if any), then the
   * stream's. The two run apart, so a revocation's send waits at most for a send under way (one
   * statement when nothing is left), never behind the stream's read.
   */
  soon(): void {
    if (this.stopped) return;
    void this.sends
      .run()
      .catch(() => {})
      // none after a stop: its listeners are gone
      .then(() => (this.stopped ? undefined : this.passesOn.run()))
      .catch(() => {});
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
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // a send under way is followed by a stream pass: drained in that order
    await this.sends.idle();
    await this.passesOn.idle();
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

  /** Publishes what is unpublished, oldest first. */
  private async sendUnsent(): Promise<void> {
    const send = (facts: FactMessage[]) =>
      this.deps.bus.publish(
        facts.map((f) => this.message('RevocationFact', f.key, f, new Date(f.revokedAt))),
      );
    while ((await this.deps.facts.publish(send, PUBLICATION_BATCH)).more) {
      // until a round finds less than a full batch: nothing is left that was recorded before the pass
    }
  }

  /**
   * Passes on to the stream's listeners every fact on the topic since the last such pass, sent by
   * this instance or another (facts are marked sent in number order: none is passed over).
   */
  private async passOn(): Promise<void> {
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
    if (this.stopped) return;
    const time = new Date(this.deps.clock.now());
    try {
      await this.sends.run();
      await this.passesOn.run();
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
