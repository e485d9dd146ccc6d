export * from './codec.ts';
export * from './idempotent.ts';
export * from './in-process.ts';
export * from './kafka.ts';
export * from './port.ts';
export * from './projection.ts';
