import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { TOPICS } from '@grantline/events';
import { Kafka, logLevel } from 'kafkajs';

interface Arrival {
  /** performance.now() when the message arrived here */
  at: number;
  /** when its service recorded the event (its `ce_time`), on the same clock */
  recorded: number;
  /** when its producer sent it (the record's timestamp, which kafkajs sets at send), on the same clock */
  sent: number;
  /** key and value, to find the messages about one grant */
  text: string;
}

/**
 * Where a disconnection's time goes: a consumer of its own (a fresh group, reading from the end)
 * on the grants topic (the consent service's event, relayed) and on the revocations topic (the
 * projector's fact, published), noting when each message about a grant arrives and when its event
 * was recorded. With the moment the request was sent and the moment the API answered 401, a sample
 * splits into hops: the consent service, its relay, Kafka's delivery to a consumer, the projector
 * with its publication, Kafka's delivery again, and the SDK's own subscription (each producer's send
 * is the record's timestamp, which kafkajs sets as it sends). (The services run on this machine, so their clocks are this one.)
 */
export const hopProbe = async (kafka: { brokers: string[]; topicPrefix: string }) => {
  const client = new Kafka({ clientId: 'bench-hops', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
  const consumer = client.consumer({ groupId: `bench-hops-${randomUUID()}`, maxWaitTimeInMs: 100 });
  const seen = { grants: [] as Arrival[], revocations: [] as Arrival[] };
  const grantsTopic = kafka.topicPrefix + TOPICS.grants;
  await consumer.connect();
  await consumer.subscribe({
    topics: [grantsTopic, kafka.topicPrefix + TOPICS.revocations],
    fromBeginning: false,
  });
  let assigned!: () => void;
  const ready = new Promise<void>((resolve) => {
    assigned = resolve;
  });
  consumer.on(consumer.events.GROUP_JOIN, () => assigned());
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      const at = performance.now();
      const offset = Date.now() - at;
      const into = batch.topic === grantsTopic ? seen.grants : seen.revocations;
      for (const m of batch.messages)
        into.push({
          at,
          recorded: Date.parse(m.headers?.ce_time?.toString() ?? '') - offset,
          sent: Number(m.timestamp) - offset,
          text: `${m.key?.toString()} ${m.value?.toString()}`,
        });
    },
  });
  await ready;
  /** the first arrival at or after `from` of a message naming `grantId` (and the organisation, if given) */
  const first = (list: Arrival[], from: number, grantId: string, organisation?: string) =>
    list.find(
      (m) => m.at >= from && m.text.includes(grantId) && (!organisation || m.text.includes(organisation)),
    );
  return {
    arrivals: (from: number, grantId: string, organisation?: string) => {
      const event = first(seen.grants, from, grantId);
      const fact = first(seen.revocations, from, grantId, organisation);
      return {
        recorded: event?.recorded,
        relayed: event?.sent,
        grants: event?.at,
        published: fact?.sent,
        revocations: fact?.at,
      };
    },
    /** forget what arrived before `before` (a long run would otherwise search an ever longer list) */
    trim: (before: number) => {
      for (const list of [seen.grants, seen.revocations]) {
        const keep = list.findIndex((m) => m.at >= before);
        list.splice(0, keep === -1 ? list.length : keep);
      }
    },
    stop: () => consumer.disconnect(),
  };
};
