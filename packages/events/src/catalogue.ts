import type { z } from 'zod';
import type { DomainEvent } from './envelope.ts';
import { grantEventSchemas, sessionEventSchemas, wideRevocationEventSchemas } from './grants.ts';
import { registryEventSchemas } from './registry.ts';
import { revocationMessageSchemas } from './revocations.ts';
import { tokenEventSchemas } from './tokens.ts';
import { TOPICS, type Topic } from './topics.ts';

type SchemaMap = Record<string, z.ZodType>;

/** The discriminated union of `{ type, data }` records described by a schema map. */
export type EventsOf<M extends SchemaMap> = {
  [K in keyof M & string]: DomainEvent<K, z.infer<M[K]>>;
}[keyof M & string];

export type GrantEvent = EventsOf<typeof grantEventSchemas>;
export type SessionEvent = EventsOf<typeof sessionEventSchemas>;
export type WideRevocationEvent = EventsOf<typeof wideRevocationEventSchemas>;
export type TokenEvent = EventsOf<typeof tokenEventSchemas>;
export type RegistryEvent = EventsOf<typeof registryEventSchemas>;
/** messages of the revocations topic (not events of any store: the projector's facts and heartbeats) */
export type RevocationMessage = EventsOf<typeof revocationMessageSchemas>;
export type GrantlineEvent = GrantEvent | WideRevocationEvent | SessionEvent | TokenEvent | RegistryEvent;
export type EventType = GrantlineEvent['type'];

export interface EventDefinition {
  readonly type: string;
  /** CloudEvents `type` attribute: reverse-DNS, versioned with the schema */
  readonly ceType: string;
  readonly version: number;
  readonly topic: Topic;
  readonly schema: z.ZodType;
}

const define = (topic: Topic, schemas: SchemaMap): EventDefinition[] =>
  Object.entries(schemas).map(([type, schema]) => ({
    type,
    ceType: `dev.grantline.${type}.v1`,
    version: 1,
    topic,
    schema,
  }));

/** Every event type Grantline publishes, keyed by domain type. */
export const eventCatalogue: ReadonlyMap<string, EventDefinition> = new Map(
  [
    ...define(TOPICS.registry, registryEventSchemas),
    ...define(TOPICS.grants, grantEventSchemas),
    ...define(TOPICS.grants, wideRevocationEventSchemas),
    ...define(TOPICS.grants, sessionEventSchemas),
    ...define(TOPICS.tokens, tokenEventSchemas),
    ...define(TOPICS.revocations, revocationMessageSchemas),
  ].map((d) => [d.type, d]),
);

export const eventCatalogueByCeType: ReadonlyMap<string, EventDefinition> = new Map(
  [...eventCatalogue.values()].map((d) => [d.ceType, d]),
);
