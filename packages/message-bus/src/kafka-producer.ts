import { type Kafka, Partitioners, type Producer } from 'kafkajs';

// kafkajs warns at every idempotent producer's creation when its retries are bounded. They are bounded
// on purpose (see `connected`), so that line says nothing an operator can act on.
export const BOUNDED_RETRIES_WARNING = 'Limiting retries for the idempotent producer';

/**
 * The Kafka bus's one producer: connected on first use, idempotent, its sends one after another, and
 * replaced by a new one (a new producer id) after a send that failed for good.
 */
export class SerialProducer {
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  /** the last send's settlement: sends run one after another (`send`) */
  private sending: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly kafka: Kafka,
    /** how long one send may retry before it fails back to the caller */
    private readonly publishTimeoutMs: number,
  ) {}

  private async connected(): Promise<Producer> {
    if (this.producer) return this.producer;
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: true,
        // Idempotent (a producer id and per-partition sequence numbers, acks from all in-sync
        // replicas): a batch the broker wrote but whose acknowledgement was lost is not written twice
        // by kafkajs's retries. One request in flight keeps per-partition order across them. Retries
        // are bounded so a publish fails back to the relay within `publishTimeoutMs` during an
        // outage; `send` then drops this producer, and the relay's resend goes out under a new
        // producer id (the old sequence numbers may no longer match what the broker holds). That
        // resend may duplicate: delivery stays at least once, and consumers deduplicate by event id.
        // (ACLs: before Kafka 3.0 idempotence needs IdempotentWrite on the cluster; from 3.0 Write on a topic.)
        idempotent: true,
        maxInFlightRequests: 1,
        retry: { retries: 3, maxRetryTime: this.publishTimeoutMs },
      });
      await producer.connect();
      producer.on(producer.events.DISCONNECT, () => {
        if (this.producer === producer) this.producer = undefined;
      });
      this.producer = producer;
      return producer;
    })().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /**
   * Runs one send on the producer, after every send before it has settled. When a produce request
   * fails, kafkajs rolls the partition's sequence number back (the broker may have written the batch
   * all the same) and waits before its own retry: another send slipping in meanwhile would reuse that
   * sequence number, and the broker would acknowledge it as a duplicate without writing it. So sends
   * never overlap (one request is in flight per connection anyway), and a send that fails for good
   * drops the producer before the next one starts: the next connects a new one, with a new producer id.
   */
  send<T>(work: (producer: Producer) => Promise<T>): Promise<T> {
    const run = this.sending.then(async () => {
      const producer = await this.connected();
      try {
        return await work(producer);
      } catch (error) {
        if (this.producer === producer) {
          this.producer = undefined;
          producer.disconnect().catch(() => {});
        }
        throw error;
      }
    });
    this.sending = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect();
  }
}
