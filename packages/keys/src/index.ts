export * from './flow.ts';
export * from './kek.ts';
export * from './key-manager.ts';
