export * from './clients.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './names.ts';
export * from './sdk.ts';
export * from './tracing.ts';
