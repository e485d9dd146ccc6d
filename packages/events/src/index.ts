export * from './catalogue.ts';
export * from './envelope.ts';
export { grantEventSchemas, sessionEventSchemas, wideRevocationEventSchemas } from './grants.ts';
export * from './json-schema.ts';
export { ClientMetadata, type ClientMetadataRecord, registryEventSchemas } from './registry.ts';
export * from './revocations.ts';
export { tokenEventSchemas } from './tokens.ts';
export * from './topics.ts';
export * from './validation.ts';
