import { describe, expect, it } from 'vitest';
import { redirectUriMatches } from '../src/domain/authorization-request.ts';

describe('redirect URI matching (RFC 9700 §4.1.3, RFC 8252 §7.3)', () => {
  it('is an exact string comparison', () => {
    expect(redirectUriMatches('https://app.example/cb', 'https://app.example/cb')).toBe(true);
    for (const near of [
      'https://app.example/cb/',
      'https://APP.example/cb',
      'https://app.example/cb?x',
      'https://app.example:443/cb',
    ])
      expect(redirectUriMatches('https://app.example/cb', near)).toBe(false);
  });

  it('lets only the port vary for loopback http URIs', () => {
    expect(redirectUriMatches('http://127.0.0.1/cb', 'http://127.0.0.1:4000/cb')).toBe(true);
    expect(redirectUriMatches('http://[::1]:1/cb', 'http://[::1]:2/cb')).toBe(true);
    expect(redirectUriMatches('http://127.0.0.1/cb', 'http://127.0.0.1:4000/cb/')).toBe(false);
    expect(redirectUriMatches('http://127.0.0.1/cb', 'http://127.0.0.1:65536/cb')).toBe(false);
    expect(redirectUriMatches('http://127.0.0.1/cb', 'http://localhost:4000/cb')).toBe(false);
    expect(redirectUriMatches('http://127.0.0.1/cb', 'http://127.0.0.1:4000/cb?x=1')).toBe(false);
    expect(redirectUriMatches('https://127.0.0.1/cb', 'https://127.0.0.1:4000/cb')).toBe(false);
  });
});
