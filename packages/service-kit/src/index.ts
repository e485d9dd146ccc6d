export * from './config.ts';
export * from './health.ts';
export * from './kafka-config.ts';
export * from './main.ts';
export * from './redis.ts';
export * from './runtime.ts';
export * from './service.ts';
