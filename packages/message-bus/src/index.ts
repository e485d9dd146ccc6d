export * from './codec.ts';
export * from './idempotent.ts';
export * from './in-process.ts';
export * from './kafka.ts';
export { consumerLag } from './kafka-telemetry.ts';
export * from './port.ts';
export * from './projection.ts';
