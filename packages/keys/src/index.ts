export * from './kek.ts';
export * from './key-manager.ts';
export * from './flow.ts';
