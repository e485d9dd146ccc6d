// node-oidc-provider as the benchmark peer: one confidential client (client_secret_basic),
// client_credentials, RFC 9068-style JWT access tokens signed with ES256, as Grantline issues them.
// Introspection (RFC 7662) is on for the same client; node-oidc-provider introspects only the tokens
// it stores (it refuses JWT access tokens there), so `bench:revocation` sets ACCESS_TOKEN_FORMAT=opaque.
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = await generateKeyPair('ES256', { extractable: true });
const audience = 'https://api.example.com';
const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID!,
      client_secret: process.env.CLIENT_SECRET!,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256', // its only key is ES256
      scope: 'api.read',
    },
  ],
  jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'peer-1', alg: 'ES256', use: 'sig' }] },
  scopes: ['api.read'],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api.read',
        audience,
        accessTokenFormat: process.env.ACCESS_TOKEN_FORMAT ?? 'jwt',
        accessTokenTTL: 600,
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log('ready'));
