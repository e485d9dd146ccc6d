/** RFC 6749 §3.3: a space-delimited list of scope-tokens. Undefined when malformed. */
export const parseScope = (scope: string | undefined): string[] | undefined => {
  if (scope === undefined) return [];
  if (!/^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/.test(scope)) return undefined;
  return [...new Set(scope.split(' '))];
};

export const formatScope = (scopes: readonly string[]): string => scopes.join(' ');
