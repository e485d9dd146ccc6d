// Benchmark-only tools without bundled types: used through their documented options only.
declare module 'oidc-provider';
declare module 'autocannon';
