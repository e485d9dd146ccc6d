import fc from 'fast-check';
import { b64Junk, b64u, base64urlChar, text } from './generators.ts';

/** Mutations of real artefacts (codes, refresh tokens, verifiers), and what counts as the same one. */

export const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('drop-head' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('replace-char' as const), at: fc.nat(), with: base64urlChar }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    with: fc.oneof(b64Junk, text, fc.constantFrom('.', '..', '=', '==', ' ', '+', '/', '%', '\u0000', '~')),
  }),
  fc.record({
    kind: fc.constant('segment' as const),
    index: fc.integer({ min: 0, max: 5 }),
    with: fc.oneof(
      b64Junk,
      fc.constantFrom(
        b64u({ alg: 'none' }),
        b64u({ alg: 'dir', enc: 'A128GCM' }),
        b64u({ alg: 'dir', enc: 'A256GCM' }),
        b64u({ alg: 'dir', enc: 'A256GCM', kid: '__proto__' }),
        b64u({ alg: 'dir', enc: 'A256GCM', kid: 'constructor' }),
        b64u({ alg: 'dir', enc: 'A256GCM', kid: { x: 1 } }),
        b64u({ alg: 'dir', enc: 'A256GCM', zip: 'DEF' }),
        b64u({ alg: 'dir', enc: 'A256GCM', crit: ['exp'], exp: 1 }),
        b64u({ alg: 'RSA-OAEP', enc: 'A256GCM' }),
        b64u({ alg: 'PBES2-HS256+A128KW', enc: 'A256GCM', p2c: 1_000_000_000, p2s: 'AAAAAAAAAAA' }),
        b64u({ alg: 'HS256', typ: 'JWT' }),
        b64u('[]'),
        b64u('null'),
        b64u('"x"'),
        b64u('{'),
        b64u('{"typ":"code","exp":99999999999}'),
        '',
      ),
    ),
  }),
  fc.record({ kind: fc.constant('drop-segment' as const), index: fc.nat(5) }),
  fc.record({ kind: fc.constant('swap-segments' as const), a: fc.nat(5), b: fc.nat(5) }),
  fc.record({ kind: fc.constant('repeat' as const), times: fc.integer({ min: 2, max: 40 }) }),
  fc.record({ kind: fc.constant('standard-base64' as const) }),
  fc.record({ kind: fc.constant('case' as const), upper: fc.boolean() }),
);
export type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

export const applyMutation = (value: string, m: Mutation, separator = '.'): string => {
  const at = (n: number) => n % (value.length + 1);
  const segments = value.split(separator);
  switch (m.kind) {
    case 'flip': {
      const i = m.at % Math.max(value.length, 1);
      const c = value.charCodeAt(i) ^ (1 << m.bit);
      return value.slice(0, i) + String.fromCharCode(Number.isNaN(c) ? 0 : c) + value.slice(i + 1);
    }
    case 'truncate':
      return value.slice(0, at(m.at));
    case 'drop-head':
      return value.slice(at(m.at));
    case 'replace-char': {
      const i = m.at % Math.max(value.length, 1);
      return value.slice(0, i) + m.with + value.slice(i + 1);
    }
    case 'insert':
      return value.slice(0, at(m.at)) + m.with + value.slice(at(m.at));
    case 'segment':
      segments[m.index % (segments.length + 1)] = m.with;
      return segments.join(separator);
    case 'drop-segment':
      segments.splice(m.index % segments.length, 1);
      return segments.join(separator);
    case 'swap-segments': {
      const a = m.a % segments.length;
      const b = m.b % segments.length;
      [segments[a], segments[b]] = [segments[b]!, segments[a]!];
      return segments.join(separator);
    }
    case 'repeat':
      return value.repeat(m.times);
    case 'standard-base64':
      return segments
        .map((s) => Buffer.from(s, 'base64url').toString('base64'))
        .join(separator)
        .replace(/-/g, '+');
    case 'case':
      return m.upper ? value.toUpperCase() : value.toLowerCase();
  }
};
export const mangle = (value: string, steps: Mutation[]) =>
  steps.reduce((v, m) => applyMutation(v, m), value);
export const mutations = fc.array(mutation, { minLength: 1, maxLength: 3 });

/**
 * Same protected header and the same bytes in every other segment: a non-canonical spelling of the
 * very same JWE (jose's base64url decoder drops whitespace, accepts `+`, `/` and padding, and ignores
 * the unused bits of a segment's last character).
 */
export const sameJwe = (a: string, b: string) => {
  const x = a.split('.');
  const y = b
    .split('.')
    .map((s, i) =>
      i === 0 ? s : s.replace(/\s/g, '').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
    );
  return (
    x.length === y.length &&
    x[0] === y[0] &&
    x.every(
      (s, i) =>
        /^[A-Za-z0-9_-]*$/.test(y[i]!) && Buffer.from(s, 'base64url').equals(Buffer.from(y[i]!, 'base64url')),
    )
  );
};
export const REFRESH = /^([A-Za-z0-9_-]{22})\.(\d{1,6})\.([A-Za-z0-9_-]{43})$/;
/** The same family, generation number and secret: a non-canonical spelling of the same refresh token. */
export const sameRefresh = (a: string, b: string) => {
  const x = REFRESH.exec(a);
  const y = REFRESH.exec(b);
  return !!x && !!y && x[1] === y[1] && Number(x[2]) === Number(y[2]) && x[3] === y[3];
};
