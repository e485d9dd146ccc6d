export * from './kek.ts';
export * from './key-config.ts';
export * from './key-manager.ts';
export * from './key-material.ts';
export * from './purposes.ts';
export * from './sealed.ts';
