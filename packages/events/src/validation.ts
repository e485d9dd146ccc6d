import type { z } from 'zod';
import { type EventDefinition, eventCatalogue, eventCatalogueByCeType } from './catalogue.ts';
import type { DomainEvent } from './envelope.ts';

/** An event whose type is unknown or whose data does not match its JSON Schema. Never retriable. */
export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError';
  readonly retriable = false;
  constructor(
    readonly eventType: string,
    readonly issues: readonly string[],
  ) {
    super(`invalid event ${JSON.stringify(eventType)}: ${issues.join('; ')}`);
  }
}

const describe = (issues: readonly z.core.$ZodIssue[]): string[] =>
  issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(data)'}: ${i.message}`);

const check = (definition: EventDefinition | undefined, type: string, data: unknown): DomainEvent => {
  if (!definition) throw new InvalidEventError(type, ['unknown event type']);
  const result = definition.schema.safeParse(data);
  if (!result.success) throw new InvalidEventError(type, describe(result.error.issues));
  return { type: definition.type, data: result.data };
};

/** Validates a domain event against its schema; returns it with data as parsed. */
export const validateEvent = <E extends DomainEvent>(event: E): E =>
  check(eventCatalogue.get(event.type), event.type, event.data) as E;

/** Validates an event received with a CloudEvents `type` attribute. */
export const validateCloudEventData = (ceType: string, data: unknown): DomainEvent =>
  check(eventCatalogueByCeType.get(ceType), ceType, data);

export const definitionOf = (type: string): EventDefinition => {
  const definition = eventCatalogue.get(type);
  if (!definition) throw new InvalidEventError(type, ['unknown event type']);
  return definition;
};
