import { InvalidScope, InvalidTarget, parseScope } from '@grantline/oauth';

/** Requested scopes, limited to what the client may have; all of them when none is asked for. */
export const grantedScopes = (requested: string | undefined, allowed: readonly string[]): string[] => {
  const scopes = parseScope(requested);
  if (!scopes) throw new InvalidScope('scope is malformed');
  const refused = scopes.filter((s) => !allowed.includes(s));
  if (refused.length > 0) throw new InvalidScope(`scope not allowed for this client: ${refused.join(' ')}`);
  return scopes.length > 0 ? scopes : [...allowed];
};

/** RFC 8707 §2: the audience from `resource` indicators the client may use; its defaults when none. */
export const audienceFor = (
  resources: readonly string[],
  allowed: readonly string[],
  fallback: string,
): string[] => {
  for (const r of resources) {
    let url: URL;
    try {
      url = new URL(r);
    } catch {
      throw new InvalidTarget('resource must be an absolute URI');
    }
    if (url.hash || r.includes('#')) throw new InvalidTarget('resource must not have a fragment');
    if (!allowed.includes(url.href)) throw new InvalidTarget(`resource not allowed for this client: ${r}`);
  }
  if (resources.length > 0) return [...new Set(resources.map((r) => new URL(r).href))];
  return allowed.length > 0 ? [...allowed] : [fallback];
};
