export * from './demo.ts';
export * from './embedded.ts';
export * from './gateway.ts';
export * from './routes.ts';
export * from './secrets.ts';
