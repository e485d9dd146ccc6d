export * from './port.ts';
export * from './redis.ts';
