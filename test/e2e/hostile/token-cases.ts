import fc from 'fast-check';
import { redirectVariants } from './authorize-cases.ts';
import { type Fixture, validAuth } from './fixture.ts';
import {
  b64,
  b64Junk,
  b64u,
  bad,
  basicOf,
  editsOf,
  headerJunk,
  JWT_BEARER,
  knownTokenParameters,
  type Pairs,
  parameterName,
  smallText,
  sometimes,
  text,
} from './generators.ts';
import { mangle, mutations, sameJwe, sameRefresh } from './mutations.ts';

/** Hostile client authentication, PKCE verifiers and whole requests for /oauth2/token. */

export const authorizationHeader = (f: Fixture) => {
  const id = f.tenant.client.client_id;
  const secret = f.tenant.client.client_secret!;
  return fc.oneof(
    fc.constant(validAuth(f)),
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
      `Bearer ${f.liveRefresh}`,
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

export const assertion = (f: Fixture, sub: string) => {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: sub,
    sub,
    aud: `${f.stack.tokenUrl}/oauth2/token`,
    exp: now + 60,
    jti: 'x',
  };
  return `${b64u({ alg: 'none' })}.${b64u(claims)}.`;
};

export const verifierJunk = (f: Fixture) =>
  fc.oneof(
    mutations.map((m) => mangle(f.fresh.verifier, m)),
    fc.string({ unit: fc.constantFrom(...'ABCxyz019-._~'.split('')), maxLength: 200 }),
    fc.constantFrom(
      '',
      f.fresh.verifier.slice(0, 42),
      `${f.fresh.verifier}=`,
      'a'.repeat(129),
      'a'.repeat(43),
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    ),
    text,
  );

/**
 * A token request for the random-grant property: a well-formed request with a spent or dead artefact
 * (none of them, edited or not, may succeed), random client authentication, up to four parameters
 * replaced by hostile values or removed, and now and then unknown parameters.
 */
export const tokenCases = (f: Fixture) => {
  const id = f.tenant.client.client_id;
  const secret = f.tenant.client.client_secret!;
  // well-formed requests with spent or dead artefacts: none of them, edited or not, may succeed
  const grants = fc.constantFrom<Pairs>(
    [
      ['grant_type', 'authorization_code'],
      ['code', f.spent.code],
      ['redirect_uri', f.confidential.redirect],
      ['code_verifier', f.spent.verifier],
    ],
    [
      ['grant_type', 'refresh_token'],
      ['refresh_token', f.spent.refresh],
    ],
    [
      ['grant_type', 'refresh_token'],
      ['refresh_token', f.spent.refresh],
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
    { arbitrary: fc.constant<Authentication>({ header: validAuth(f), form: none }), weight: 4 },
    { arbitrary: authorizationHeader(f).map((header) => ({ header, form: none })), weight: 3 },
    {
      arbitrary: fc
        .constantFrom<Pairs>(
          [
            ['client_id', id],
            ['client_secret', secret],
          ],
          [['client_id', f.native.id]],
          [['client_id', id]],
          [
            ['client_assertion_type', JWT_BEARER],
            ['client_assertion', assertion(f, id)],
          ],
          [
            ['client_assertion_type', JWT_BEARER],
            ['client_assertion', assertion(f, f.native.id)],
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
      mutations.map((m) => mangle(f.spent.code, m)),
      mutations.map((m) => mangle(f.fresh.code, m)).filter((c) => !sameJwe(f.fresh.code, c)),
      text,
    ),
    redirect_uri: fc.oneof(redirectVariants(f, f.confidential), text),
    code_verifier: verifierJunk(f),
    refresh_token: fc.oneof(
      mutations.map((m) => mangle(f.spent.refresh, m)),
      mutations.map((m) => mangle(f.liveRefresh, m)).filter((t) => !sameRefresh(f.liveRefresh, t)),
      text,
    ),
    scope: bad(['invoices.read', 'invoices.read invoices.write', 'admin', 'invoices.read admin', '', ' ']),
    resource: bad(['https://api.example/', 'urn:x', 'relative', 'https://api.example/#x']),
    client_id: bad([id, f.native.id, 'cl_nobody', id.toUpperCase(), `${id} `, '\u0000']),
    client_secret: bad([secret, `${secret} `, secret.slice(1), '']),
    client_assertion_type: bad([
      JWT_BEARER,
      `${JWT_BEARER} `,
      'urn:ietf:params:oauth:client-assertion-type:saml2-bearer',
    ]),
    client_assertion: fc.oneof(
      fc.constantFrom(
        assertion(f, id),
        assertion(f, f.native.id),
        assertion(f, '\u0000'),
        'a.b.c',
        'eyJ.eyJ.',
        '...',
      ),
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
  return cases;
};
