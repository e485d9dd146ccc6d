import fc from 'fast-check';
import { expect } from 'vitest';
import type { Client, Fixture } from './fixture.ts';
import {
  applyEdits,
  bad,
  CHALLENGE,
  contentTypes,
  editsOf,
  encode,
  headerJunk,
  knownAuthorizeParameters,
  type Pairs,
  parameterName,
  rawEncoded,
  send,
  sometimes,
  text,
} from './generators.ts';

/**
 * Hostile requests to /oauth2/authorize and the check of every answer: no 5xx, and no redirect but to
 * the issuer's sign-in page, the consent service or the client's registered redirect URI.
 */

export const redirectVariants = (f: Fixture, c: Client) => {
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
    c === f.native
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

/**
 * A valid request (which would start sign-in or consent) with up to four parameters replaced by
 * hostile values or removed, plus now and then unknown or repeated parameters and raw junk; so every
 * check of the endpoint is reached, alone and in combination.
 */
export const authorizeCases = (f: Fixture) =>
  fc.constantFrom(f.confidential, f.native).chain((client) => {
    const other = client === f.confidential ? f.native : f.confidential;
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
            ['grant_id', f.grantId],
          ],
          [
            ['grant_management_action', 'replace'],
            ['grant_id', f.grantId],
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
      redirect_uri: redirectVariants(f, client),
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
      grant_management_action: bad(['create', 'merge', 'replace', 'update', 'query', 'revoke', 'CREATE', '']),
      grant_id: bad([
        f.grantId,
        'short',
        'x'.repeat(101),
        'a'.repeat(100),
        `${f.grantId}/..`,
        `../${f.grantId}`,
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
export type AuthorizeCase = ReturnType<typeof authorizeCases> extends fc.Arbitrary<infer C> ? C : never;

/**
 * The target of every 3xx: the issuer's sign-in page, the consent service, or the client's
 * registered redirect URI with an error, and then only if the request named no other URI.
 */
export const expectSafeAuthorize = async (f: Fixture, res: Response, sent: URLSearchParams) => {
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
    location.startsWith(`${f.stack.issuer}/login?`) ||
    location.startsWith(`${f.stack.consentUrl}/consent?`)
  )
    return;
  // the client the request named (exactly once), whose redirect URI this may be
  const ids = sent.getAll('client_id');
  const client = ids.length === 1 ? [f.confidential, f.native].find((k) => k.id === ids[0]) : undefined;
  expect(client?.isRedirect(location), `redirect to an unregistered URI: ${seen}`).toBe(true);
  const url = new URL(location);
  expect(url.searchParams.get('error'), seen).toBeTruthy();
  expect(url.searchParams.get('iss'), seen).toBe(f.stack.issuer);
  const requested = sent.getAll('redirect_uri');
  const named =
    requested.length === 0 ||
    (requested.length === 1 && (requested[0] === '' || client!.accepts(requested[0]!)));
  expect(
    named,
    `redirected to the client although redirect_uri was ${JSON.stringify(requested)}: ${seen}`,
  ).toBe(true);
};

export const pairsOf = (c: AuthorizeCase): Pairs => {
  const base = applyEdits(c.valid, c.edits);
  const repeated = base.length > 0 ? c.repeats.map((i) => base[i % base.length]!) : [];
  return c.extrasFirst ? [...c.extras, ...base, ...repeated] : [...base, ...repeated, ...c.extras];
};

export const authorize = async (f: Fixture, c: AuthorizeCase, method: 'GET' | 'POST') => {
  let query = encode(pairsOf(c));
  if (c.rawTail !== undefined) query += `&${c.rawTail}`;
  const headers: Record<string, string> = {};
  if (c.cookie !== undefined) headers.cookie = c.cookie === 'session' ? f.sessionCookie : c.cookie;
  if (method === 'GET') {
    const res = await send(`${f.stack.issuer}/oauth2/authorize?${query}`, { headers });
    await expectSafeAuthorize(f, res, new URL(`${f.stack.issuer}/oauth2/authorize?${query}`).searchParams);
  } else {
    headers['content-type'] = c.contentType;
    const res = await send(`${f.stack.issuer}/oauth2/authorize`, { method: 'POST', headers, body: query });
    await expectSafeAuthorize(f, res, new URLSearchParams(query));
  }
};
