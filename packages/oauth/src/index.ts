export * from './client-auth.ts';
export * from './errors.ts';
export * from './guards.ts';
export * from './http.ts';
export * from './pages.ts';
export * from './remote-jwks.ts';
export * from './scopes.ts';
export * from './secrets.ts';
