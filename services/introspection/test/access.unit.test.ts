import type { ClientRecord } from '@grantline/oauth';
import { describe, expect, it } from 'vitest';
import { isResourceServer, maySee } from '../src/access.ts';
import type { TokenInfo } from '../src/inspector.ts';

const client = (over: Partial<ClientRecord>): ClientRecord => ({
  clientId: 'c',
  status: 'active',
  tokenEndpointAuthMethod: 'client_secret_basic',
  grantTypes: ['client_credentials'],
  scopes: [],
  resources: [],
  redirectUris: [],
  ...over,
});
const token = (over: Partial<TokenInfo> = {}): TokenInfo => ({
  active: true,
  token_type: 'Bearer',
  client_id: 'app',
  sub: 'ada',
  aud: ['https://invoices.example/'],
  iss: 'https://as.example',
  exp: 2,
  iat: 1,
  ...over,
});

describe('item 36: who may see a token', () => {
  const rs = client({ clientId: 'rs', servedResources: ['https://invoices.example/'] });

  it('the client it was issued to, and a resource server of its audience', () => {
    expect(maySee(client({ clientId: 'app', grantTypes: ['authorization_code'] }), token())).toBe(true);
    expect(maySee(rs, token())).toBe(true);
    expect(maySee(rs, token({ aud: 'https://invoices.example/' }))).toBe(true);
  });

  it('not a resource server of another audience, nor an app that signs users in, nor for a refresh token', () => {
    expect(maySee(client({ clientId: 'rs2', servedResources: ['https://payroll.example/'] }), token())).toBe(
      false,
    );
    const app = client({
      clientId: 'other',
      grantTypes: ['authorization_code', 'client_credentials'],
      servedResources: ['https://invoices.example/'],
    });
    expect(isResourceServer(app)).toBe(false);
    expect(maySee(app, token())).toBe(false);
    expect(maySee(rs, token({ token_type: 'refresh_token' }))).toBe(false);
  });

  it('a public client is never a resource server', () => {
    expect(
      isResourceServer(client({ tokenEndpointAuthMethod: 'none', servedResources: ['https://x.example/'] })),
    ).toBe(false);
  });

  it('a client that registered resources itself is not a resource server: only the administrator grants it', () => {
    const selfDeclared = client({ clientId: 'rs3', resources: ['https://invoices.example/'] });
    expect(isResourceServer(selfDeclared)).toBe(false);
    expect(maySee(selfDeclared, token())).toBe(false);
  });
});
