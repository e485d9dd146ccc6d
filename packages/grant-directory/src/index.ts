/**
 * Grants and ended sign-ins as the consent and token services read them, from `grantline.grants.v1`:
 * migrate the tables (`migrateReadModels`), then feed each projection through `runtime.project`.
 */
export * from './grants.ts';
export * from './sessions.ts';
