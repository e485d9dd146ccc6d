import { z } from 'zod';
import { eventCatalogue } from './catalogue.ts';

/** JSON Schema (draft 2020-12) of one event type's `data`, as published in `schemas/`. */
export const jsonSchemaOf = (type: string): Record<string, unknown> => {
  const definition = eventCatalogue.get(type);
  if (!definition) throw new Error(`unknown event type ${type}`);
  return {
    $id: `https://grantline.dev/schemas/${definition.ceType}.json`,
    title: definition.type,
    description: `data of CloudEvents type ${definition.ceType} on topic ${definition.topic}`,
    ...z.toJSONSchema(definition.schema, { target: 'draft-2020-12' }),
  };
};
