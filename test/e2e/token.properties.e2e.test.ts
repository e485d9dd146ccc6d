import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSafeAuthorize, redirectVariants } from './hostile/authorize-cases.ts';
import { type Client, type Fixture, startFixture, validAuth } from './hostile/fixture.ts';
import {
  applyEdits,
  base64urlChar,
  basicOf,
  CHALLENGE,
  contentTypes,
  encode,
  expectTokenError,
  JWT_BEARER,
  type Pairs,
  RUNS,
  rawEncoded,
  send,
  text,
} from './hostile/generators.ts';
import { mangle, mutations, sameJwe, sameRefresh } from './hostile/mutations.ts';
import { assertion, authorizationHeader, tokenCases, verifierJunk } from './hostile/token-cases.ts';

/**
 * Property-based hostile input (fast-check) at the token endpoint: never a 5xx, never a hang, and
 * every bad token request is a 4xx RFC 6749 §5.2 JSON error with `Cache-Control: no-store`; plus the
 * hostile inputs (at the token and the authorization endpoint) the properties once found, each alone.
 * 150 runs per property; PROPERTY_RUNS=3000 for a deeper local search.
 */

describe('hostile parameters (property-based)', () => {
  let f: Fixture;

  beforeAll(async () => {
    f = await startFixture();
  }, 120_000);
  afterAll(() => f?.stop());

  it('token endpoint: random grant types, parameters and client authentication', async () => {
    const cases = tokenCases(f);
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const base = applyEdits([...c.grant, ...c.authentication.form], c.edits);
        const body = encode(c.extrasFirst ? [...c.extras, ...base] : [...base, ...c.extras]);
        const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
        if (c.authentication.header !== undefined) headers.authorization = c.authentication.header;
        const res = await send(`${f.stack.tokenUrl}/oauth2/token`, { method: 'POST', headers, body });
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
          { arbitrary: fc.constant(f.fresh.verifier), weight: 3 },
          { arbitrary: verifierJunk(f), weight: 1 },
        ),
        redirect: fc.oneof(
          { arbitrary: fc.constant(f.confidential.redirect), weight: 4 },
          { arbitrary: redirectVariants(f, f.confidential), weight: 1 },
        ),
      })
      .map((c) => ({ ...c, code: c.code ? mangle(f.fresh.code, c.code) : f.fresh.code }))
      .filter(
        (c) =>
          c.code !== f.fresh.code ||
          c.verifier !== f.fresh.verifier ||
          c.redirect !== f.confidential.redirect,
      );
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const res = await send(`${f.stack.tokenUrl}/oauth2/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: validAuth(f) },
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
            sameJwe(f.fresh.code, c.code) &&
              c.verifier === f.fresh.verifier &&
              c.redirect === f.confidential.redirect,
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
    const family = f.liveRefresh.split('.')[0]!;
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
        .map((g) => f.liveRefresh.replace(/\.\d+\./, `.${g}.`)),
      fc
        .string({ unit: base64urlChar, minLength: 22, maxLength: 22 })
        .map((s) => f.liveRefresh.replace(family, s)),
      fc
        .string({ unit: base64urlChar, minLength: 43, maxLength: 43 })
        .map((s) => f.liveRefresh.replace(/[^.]+$/, s)),
      fc.constantFrom(
        `${f.liveRefresh}.`,
        `.${f.liveRefresh}`,
        f.liveRefresh.replace(/\./g, '..'),
        f.liveRefresh.replace(/\./g, ':'),
        `${f.liveRefresh} `,
        `${f.liveRefresh}\u0000`,
        f.liveRefresh.replace(/\.(\d+)\./, '.$1.$1.'),
        family,
      ),
    );
    const cases = fc.record({
      token: fc
        .oneof(
          specific,
          mutations.map((m) => mangle(f.liveRefresh, m)),
        )
        .filter((t) => t !== f.liveRefresh),
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
        const res = await send(`${f.stack.tokenUrl}/oauth2/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: validAuth(f) },
          body: encode(pairs),
        });
        if (res.status === 200) {
          await res.body?.cancel();
          expect(
            sameRefresh(f.liveRefresh, c.token),
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
        fc.option(authorizationHeader(f), { nil: undefined }),
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
          const res = await send(`${f.stack.tokenUrl}/oauth2/token`, init);
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
        f,
        await send(`${f.stack.issuer}/oauth2/authorize?${query}`),
        new URLSearchParams(query),
      );
    };
    const post = async (pairs: Pairs) => {
      const body = encode(pairs);
      const headers = { 'content-type': 'application/x-www-form-urlencoded' };
      const res = await send(`${f.stack.issuer}/oauth2/authorize`, { method: 'POST', headers, body });
      await expectSafeAuthorize(f, res, new URLSearchParams(body));
    };
    const token = async (pairs: Pairs, headers: Record<string, string> = {}) => {
      const res = await send(`${f.stack.tokenUrl}/oauth2/token`, {
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
      post(request(f.confidential, []).map(([k, v]) => [k, k === 'client_id' ? `${v}\u0000` : v])),
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
      token([...code, ['client_assertion_type', JWT_BEARER], ['client_assertion', assertion(f, '\u0000')]]),
    );
    // a loopback redirect URI whose port the pattern accepts but URL does not: the error redirect throws
    for (const port of [65_536, 99_999])
      await check(
        `GET /oauth2/authorize (native client) redirect_uri=http://127.0.0.1:${port}/cb&response_type=token`,
        () =>
          get(
            request(f.native, [['redirect_uri', `http://127.0.0.1:${port}/cb`]]).map(([k, v]) => [
              k,
              k === 'response_type' ? 'token' : v,
            ]),
          ),
      );
    expect(failures).toEqual([]);
  }, 60_000);
});
