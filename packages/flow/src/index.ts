export * from './cookies.ts';
export * from './flow-keys.ts';
export * from './statements.ts';
