import {
  definitionOf,
  eventCatalogue,
  InvalidEventError,
  type RecordedEvent,
  validateCloudEventData,
} from '@grantline/events';
import type { IHeaders, KafkaMessage, Message } from 'kafkajs';
import type { ConsumedEvent } from './port.ts';

/** A message that is not a valid Grantline CloudEvent. Never retriable: it is dead-lettered. */
export class MalformedMessageError extends Error {
  override readonly name = 'MalformedMessageError';
  readonly retriable = false;
}

/** CloudEvents Kafka protocol binding, binary content mode: attributes in `ce_` headers, data as the value. */
export const encodeEvent = (event: RecordedEvent): { topic: string; message: Message } => {
  const definition = definitionOf(event.type);
  const headers: IHeaders = {
    ce_specversion: '1.0',
    ce_id: event.id,
    ce_source: event.source,
    ce_type: definition.ceType,
    ce_subject: event.streamId,
    ce_time: event.time.toISOString(),
    // extension attribute: the event's version in its stream, so a consumer can see gaps and order
    ce_streamversion: String(event.streamVersion),
    'content-type': 'application/json',
  };
  const { traceparent, tracestate, causationId, correlationId } = event.metadata;
  if (traceparent) headers.traceparent = traceparent;
  if (tracestate) headers.tracestate = tracestate;
  if (causationId) headers.ce_causationid = causationId;
  if (correlationId) headers.ce_correlationid = correlationId;
  return {
    topic: definition.topic,
    message: { key: event.streamId, value: JSON.stringify(event.data), headers },
  };
};

const header = (headers: IHeaders | undefined, name: string): string | undefined => {
  const value = headers?.[name];
  if (value === undefined) return undefined;
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
};

const required = (headers: IHeaders | undefined, name: string): string => {
  const value = header(headers, name);
  if (!value) throw new MalformedMessageError(`missing header ${name}`);
  return value;
};

/**
 * Whether a subscription that handles `types` (domain types; all when undefined) wants a message,
 * judged by its `ce_type` header alone, before anything is decoded: consumers of a busy topic pass
 * over the events they do not handle for the cost of one header read. A message without the header,
 * or with an unknown one, is wanted: decoding it is what dead-letters it.
 */
export const wantedBy = (types: readonly string[] | undefined): MessageFilter => {
  if (!types) return everything;
  let filter = filters.get(types);
  if (!filter) {
    const wanted = new Set(types.map((t) => eventCatalogue.get(t)?.ceType ?? t));
    filter = (headers) => {
      const ceType = header(headers, 'ce_type');
      return ceType === undefined || wanted.has(ceType) || !knownCeTypes.has(ceType);
    };
    filters.set(types, filter);
  }
  return filter;
};
type MessageFilter = (headers: IHeaders | undefined) => boolean;
const everything: MessageFilter = () => true;
/** one filter per subscription's list of types, made on its first message */
const filters = new WeakMap<readonly string[], MessageFilter>();
const knownCeTypes = new Set([...eventCatalogue.values()].map((d) => d.ceType));

export const decodeEvent = (topic: string, partition: number, message: KafkaMessage): ConsumedEvent => {
  const { headers } = message;
  if (required(headers, 'ce_specversion') !== '1.0')
    throw new MalformedMessageError('ce_specversion must be 1.0');
  const ceType = required(headers, 'ce_type');
  let raw: unknown;
  try {
    raw = JSON.parse(message.value?.toString('utf8') ?? '');
  } catch {
    throw new MalformedMessageError('value is not JSON');
  }
  let event: { type: string; data: unknown };
  try {
    event = validateCloudEventData(ceType, raw);
  } catch (error) {
    if (error instanceof InvalidEventError) throw new MalformedMessageError(error.message);
    throw error;
  }
  const optional = (name: string, key: keyof ConsumedEvent) => {
    const value = header(headers, name);
    return value ? { [key]: value } : {};
  };
  return {
    id: required(headers, 'ce_id'),
    type: event.type,
    ceType,
    source: required(headers, 'ce_source'),
    subject: required(headers, 'ce_subject'),
    streamVersion: Number(required(headers, 'ce_streamversion')),
    time: required(headers, 'ce_time'),
    data: event.data,
    ...optional('traceparent', 'traceparent'),
    ...optional('tracestate', 'tracestate'),
    ...optional('ce_causationid', 'causationId'),
    ...optional('ce_correlationid', 'correlationId'),
    topic,
    partition,
    offset: message.offset,
  };
};
