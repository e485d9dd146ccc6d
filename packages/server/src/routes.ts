/**
 * Which service answers which path, on the one public origin and on the one management origin. The
 * embedded mode dispatches by this table inside one process; the development gateway proxies by it
 * to the distributed services. One table, so both modes expose the same URLs.
 */
import type { ServiceName } from '@grantline/keys';

export interface Route {
  /** a path prefix, matched on whole segments (`/consent` matches `/consent` and `/consent/x`, not `/consents`) */
  prefix: string;
  service: ServiceName;
}

/** Public paths, most specific first; whatever matches none goes to `PUBLIC_FALLBACK`. */
export const PUBLIC_ROUTES: readonly Route[] = [
  { prefix: '/oauth2/token', service: 'token' },
  { prefix: '/oauth2/revoke', service: 'token' },
  { prefix: '/oauth2/jwks', service: 'token' },
  { prefix: '/oauth2/register', service: 'registry' },
  { prefix: '/oauth2/grants', service: 'consent' },
  { prefix: '/consent', service: 'consent' },
  // the signed-in user's connected apps: the page and its JSON API
  { prefix: '/account', service: 'consent' },
  // introspection, its response-signing keys and the revocation stream
  { prefix: '/oauth2/introspect', service: 'introspection' },
  { prefix: '/oauth2/introspection', service: 'introspection' },
  { prefix: '/oauth2/revocations', service: 'introspection' },
];
/** metadata, the authorization endpoint, sign-in and sign-out */
export const PUBLIC_FALLBACK: ServiceName = 'authorization';

/** Management paths (never on the public ingress). */
export const MANAGEMENT_ROUTES: readonly Route[] = [
  { prefix: '/admin/keys', service: 'token' },
  // the admin's subject and client revocations: the consent service owns grants
  { prefix: '/admin/revocations', service: 'consent' },
  { prefix: '/admin', service: 'registry' },
];

export const pathMatches = (path: string, prefix: string) =>
  path === prefix || path.startsWith(`${prefix}/`) || path.startsWith(`${prefix}?`);

/** The service of the first route that matches `path`, if any (the management origin has no fallback). */
export const routeFor = (path: string, routes: readonly Route[]): ServiceName | undefined =>
  routes.find((route) => pathMatches(path, route.prefix))?.service;

/** The service that answers `path` (a URL path, with or without its query). */
export const serviceFor = (
  path: string,
  routes: readonly Route[] = PUBLIC_ROUTES,
  fallback: ServiceName = PUBLIC_FALLBACK,
): ServiceName => routeFor(path, routes) ?? fallback;
