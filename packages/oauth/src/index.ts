export * from './client-auth.ts';
export * from './errors.ts';
export * from './http.ts';
export * from './scopes.ts';
export * from './secrets.ts';
export * from './pages.ts';
export * from './guards.ts';
