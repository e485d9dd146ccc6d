import { describe, expect, it } from 'vitest';
import { accessTokenClaims } from '../src/domain/access-token.ts';
import { audienceFor, grantedScopes } from '../src/grants/audience.ts';

describe('scopes and audience', () => {
  it('grants the requested subset of the allowed scopes, all of them by default', () => {
    expect(grantedScopes('a', ['a', 'b'])).toEqual(['a']);
    expect(grantedScopes(undefined, ['a', 'b'])).toEqual(['a', 'b']);
    expect(grantedScopes('a a', ['a'])).toEqual(['a']);
    expect(() => grantedScopes('a c', ['a'])).toThrow(/not allowed for this client: c/);
    expect(() => grantedScopes(' a', ['a'])).toThrow(/malformed/);
  });

  it('derives the audience from allowed resource indicators (RFC 8707), else the client defaults, else the fallback', () => {
    const allowed = ['https://api.example.com/a'];
    expect(audienceFor(['https://api.example.com/a'], allowed, 'https://issuer')).toEqual([
      'https://api.example.com/a',
    ]);
    expect(audienceFor([], allowed, 'https://issuer')).toEqual(allowed);
    expect(audienceFor([], [], 'https://issuer')).toEqual(['https://issuer']);
    expect(() => audienceFor(['https://api.example.com/b'], allowed, 'x')).toThrow(/not allowed/);
    expect(() => audienceFor(['https://api.example.com/a#f'], allowed, 'x')).toThrow(/fragment/);
  });
});

describe('RFC 9068 claims', () => {
  it('has every required claim, a single audience as a string, and no scope claim when there is none', () => {
    const claims = accessTokenClaims({
      issuer: 'https://as',
      subject: 'c1',
      clientId: 'c1',
      audience: ['https://api'],
      scopes: [],
      jti: 'j',
      now: 100,
      ttlSeconds: 600,
    });
    expect(claims).toEqual({
      iss: 'https://as',
      sub: 'c1',
      aud: 'https://api',
      exp: 700,
      iat: 100,
      jti: 'j',
      client_id: 'c1',
    });
    expect(
      accessTokenClaims({
        issuer: 'i',
        subject: 's',
        clientId: 'c',
        audience: ['a', 'b'],
        scopes: ['x', 'y'],
        jti: 'j',
        now: 0,
        ttlSeconds: 1,
      }),
    ).toMatchObject({
      aud: ['a', 'b'],
      scope: 'x y',
    });
  });
});
