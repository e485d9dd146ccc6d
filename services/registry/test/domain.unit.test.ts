import { describe, expect, it } from 'vitest';
import { ClientRuleViolation, type ClientState, clientDecider, type Metadata } from '../src/domain/client.ts';
import { userDecider } from '../src/domain/directory.ts';
import {
  InitialAccessTokenNotFound,
  initialAccessTokensDecider as iat,
} from '../src/domain/initial-access-tokens.ts';
import { parseClientMetadata } from '../src/domain/metadata.ts';

const metadata: Metadata = {
  redirectUris: [],
  grantTypes: ['client_credentials'],
  responseTypes: [],
  tokenEndpointAuthMethod: 'client_secret_basic',
  scopes: ['a', 'b'],
  resources: ['https://api.example.com/'],
};
const D = 'x'.repeat(43);
const given = (events: Parameters<typeof clientDecider.evolve>[1][]): ClientState =>
  events.reduce(clientDecider.evolve, clientDecider.initialState());
const registered = {
  type: 'ClientRegistered' as const,
  data: { clientId: 'c1', metadata, secretDigest: D, registrationTokenDigest: D, issuedAt: 1 },
};

describe('client decider (given events, when command, then events)', () => {
  it('registers a new client once', () => {
    expect(
      clientDecider.decide(
        { type: 'Register', clientId: 'c1', metadata, secretDigest: D, registrationTokenDigest: D, now: 1 },
        given([]),
      ),
    ).toEqual([registered]);
    expect(() =>
      clientDecider.decide(
        { type: 'Register', clientId: 'c1', metadata, registrationTokenDigest: D, now: 2 },
        given([registered]),
      ),
    ).toThrow(ClientRuleViolation);
  });

  it('lets a client narrow scopes, resources and grant types but never widen them', () => {
    const narrowed = { ...metadata, scopes: ['a'] };
    expect(
      clientDecider.decide({ type: 'UpdateMetadata', metadata: narrowed, by: 'client' }, given([registered])),
    ).toEqual([
      { type: 'ClientMetadataUpdated', data: { clientId: 'c1', metadata: narrowed, by: 'client' } },
    ]);
    for (const wider of [
      { ...metadata, scopes: ['a', 'c'] },
      { ...metadata, resources: ['https://other.example/'] },
      { ...metadata, grantTypes: ['client_credentials' as const, 'authorization_code' as const] },
    ]) {
      expect(() =>
        clientDecider.decide({ type: 'UpdateMetadata', metadata: wider, by: 'client' }, given([registered])),
      ).toThrow(/only be narrowed/);
    }
  });

  it('finding 2: a client cannot drop its resources, which would give its tokens the default audience', () => {
    expect(metadata.resources.length).toBeGreaterThan(0);
    expect(() =>
      clientDecider.decide(
        { type: 'UpdateMetadata', metadata: { ...metadata, resources: [] }, by: 'client' },
        given([registered]),
      ),
    ).toThrow(/not removed/);
    // an administrator may
    expect(
      clientDecider.decide(
        { type: 'UpdateMetadata', metadata: { ...metadata, resources: [] }, by: 'admin' },
        given([registered]),
      ),
    ).toHaveLength(1);
  });

  it('lets a client move between the secret methods only; an administrator anywhere, with a new secret when needed', () => {
    const as = (tokenEndpointAuthMethod: Metadata['tokenEndpointAuthMethod']) => ({
      ...metadata,
      tokenEndpointAuthMethod,
    });
    const post = clientDecider.decide(
      { type: 'UpdateMetadata', metadata: as('client_secret_post'), by: 'client', newSecretDigest: D },
      given([registered]),
    );
    expect(post.map((e) => e.type)).toEqual(['ClientMetadataUpdated']);
    for (const method of ['none', 'private_key_jwt'] as const) {
      expect(() =>
        clientDecider.decide(
          { type: 'UpdateMetadata', metadata: as(method), by: 'client' },
          given([registered]),
        ),
      ).toThrow(/token_endpoint_auth_method/);
    }
    const toJwt = clientDecider.decide(
      { type: 'UpdateMetadata', metadata: as('private_key_jwt'), by: 'admin' },
      given([registered]),
    );
    expect(toJwt).toEqual([
      {
        type: 'ClientMetadataUpdated',
        data: { clientId: 'c1', metadata: as('private_key_jwt'), by: 'admin' },
      },
    ]);
    // back onto a secret: the old one was dropped with the move, so a new one is issued
    const back = clientDecider.decide(
      { type: 'UpdateMetadata', metadata: as('client_secret_basic'), by: 'admin', newSecretDigest: D },
      given([registered, ...toJwt]),
    );
    expect(back.map((e) => e.type)).toEqual(['ClientMetadataUpdated', 'ClientSecretRotated']);
    expect(() =>
      clientDecider.decide({ type: 'RotateSecret', secretDigest: D }, given([registered, ...toJwt])),
    ).toThrow(/secret/);
  });

  it('rotates secrets only for secret-based clients, disables once, and refuses everything after deletion', () => {
    expect(clientDecider.decide({ type: 'RotateSecret', secretDigest: D }, given([registered]))).toHaveLength(
      1,
    );
    const jwtClient = {
      ...registered,
      data: {
        ...registered.data,
        metadata: { ...metadata, tokenEndpointAuthMethod: 'private_key_jwt' as const },
      },
    };
    expect(() => clientDecider.decide({ type: 'RotateSecret', secretDigest: D }, given([jwtClient]))).toThrow(
      /secret/,
    );
    const disabled = given([registered, { type: 'ClientDisabled', data: { clientId: 'c1' } }]);
    expect(clientDecider.decide({ type: 'Disable' }, disabled)).toEqual([]);
    const deleted = given([registered, { type: 'ClientDeleted', data: { clientId: 'c1' } }]);
    expect(() => clientDecider.decide({ type: 'Disable' }, deleted)).toThrow(/deleted/);
    expect(() => clientDecider.decide({ type: 'Disable' }, given([]))).toThrow(/unknown client/);
  });

  it('item 36: only an administrator makes a client a resource server, and only a confidential client_credentials one', () => {
    const set = (resources: string[], state = given([registered])) =>
      clientDecider.decide({ type: 'SetResourceServer', resources }, state);
    const granted = set(['https://api.example.com/', 'https://api.example.com/']);
    expect(granted).toEqual([
      { type: 'ClientResourceServerSet', data: { clientId: 'c1', resources: ['https://api.example.com/'] } },
    ]);
    const serving = given([registered, ...granted]);
    expect(serving.status === 'active' && serving.servedResources).toEqual(['https://api.example.com/']);
    expect(set(['https://api.example.com/'], serving)).toEqual([]);
    expect(set([], serving)).toEqual([
      { type: 'ClientResourceServerSet', data: { clientId: 'c1', resources: [] } },
    ]);
    const app = {
      ...registered,
      data: { ...registered.data, metadata: { ...metadata, grantTypes: ['authorization_code' as const] } },
    };
    expect(() => set(['https://api.example.com/'], given([app]))).toThrow(ClientRuleViolation);
    const deleted = given([registered, { type: 'ClientDeleted', data: { clientId: 'c1' } }]);
    expect(() => set(['https://api.example.com/'], deleted)).toThrow(/deleted/);
  });
});

describe('initial access tokens', () => {
  it('issues tokens and revokes each on its own, once', () => {
    const issued = [
      ...iat.decide({ type: 'Issue', tokenId: 'i1', tokenDigest: D, description: 'partners', now: 1 }, []),
      ...iat.decide({ type: 'Issue', tokenId: 'i2', tokenDigest: D, now: 2 }, []),
    ];
    const state = issued.reduce(iat.evolve, iat.initialState());
    const revoked = iat.decide({ type: 'Revoke', tokenId: 'i1' }, state);
    expect(revoked).toEqual([{ type: 'InitialAccessTokenRevoked', data: { tokenId: 'i1' } }]);
    const after = revoked.reduce(iat.evolve, state);
    expect(after.map((t) => [t.tokenId, t.revoked, t.description])).toEqual([
      ['i1', true, 'partners'],
      ['i2', false, undefined],
    ]);
    expect(iat.decide({ type: 'Revoke', tokenId: 'i1' }, after)).toEqual([]);
    expect(() => iat.decide({ type: 'Revoke', tokenId: 'nope' }, after)).toThrow(InitialAccessTokenNotFound);
  });
});

describe('user decider', () => {
  it('adds and removes memberships idempotently', () => {
    const created = userDecider.evolve(userDecider.initialState(), {
      type: 'UserCreated',
      data: { userId: 'u1', username: 'alice', sealedPasswordHash: 'h.k.iv.ct.tag', organisations: ['o1'] },
    });
    expect(userDecider.decide({ type: 'AddToOrganisation', organisationId: 'o1' }, created)).toEqual([]);
    expect(userDecider.decide({ type: 'RemoveFromOrganisation', organisationId: 'o2' }, created)).toEqual([]);
    expect(userDecider.decide({ type: 'AddToOrganisation', organisationId: 'o2' }, created)).toEqual([
      { type: 'UserAddedToOrganisation', data: { userId: 'u1', organisationId: 'o2' } },
    ]);
  });
});

describe('RFC 7591 metadata', () => {
  const parse = async (m: unknown) => parseClientMetadata(m, async (names) => names).check();
  it('accepts loopback http redirect URIs with any port for native clients, and https elsewhere', async () => {
    for (const uri of [
      'http://127.0.0.1/cb',
      'http://[::1]:8123/cb',
      'http://localhost:9000/cb',
      'https://app.example/cb',
    ]) {
      await expect(
        parse({ redirect_uris: [uri], token_endpoint_auth_method: 'none' }),
      ).resolves.toMatchObject({ redirectUris: [uri] });
    }
  });
  it('refuses custom schemes, fragments and insecure hosts with invalid_redirect_uri', async () => {
    for (const uri of [
      'http://app.example/cb',
      'ftp://app.example/cb',
      'https://app.example/cb#x',
      'javascript:alert(1)',
    ]) {
      await expect(parse({ redirect_uris: [uri] })).rejects.toMatchObject({ error: 'invalid_redirect_uri' });
    }
  });
  it('requires refresh_token to come with authorization_code and keeps grant and response types consistent', async () => {
    await expect(parse({ grant_types: ['client_credentials', 'refresh_token'] })).rejects.toMatchObject({
      error: 'invalid_client_metadata',
    });
    await expect(
      parse({ grant_types: ['client_credentials'], response_types: ['code'] }),
    ).rejects.toMatchObject({ error: 'invalid_client_metadata' });
  });
});
