/** Kafka topics: the public, versioned event contract (ARCHITECTURE.md, "Events"). */
export const TOPICS = {
  registry: 'grantline.registry.v1',
  grants: 'grantline.grants.v1',
  tokens: 'grantline.tokens.v1',
  revocations: 'grantline.revocations.v1',
} as const;

export type Topic = (typeof TOPICS)[keyof typeof TOPICS];

/** Where a consumer parks a message it cannot handle, with the reason in a header. */
export const deadLetterTopic = (topic: string): string => `${topic}.dlq`;
