import { eventually } from '@grantline/testing';
import type pg from 'pg';

/**
 * The registry's admin API (on its management port) and RFC 7591 registration as tests and
 * benchmarks use them, each call resolving once the other services have seen its effect (scopes in
 * the metadata, the client in the token service's projection).
 */
export const registryAdmin = (options: {
  issuer: string;
  registryUrl: string;
  /** the registry's management listener, where `/admin` is served */
  registryManagementUrl: string;
  adminToken: string;
  pool: pg.Pool;
}) => {
  const headers = { authorization: `Bearer ${options.adminToken}`, 'content-type': 'application/json' };
  const admin = (path: string, body?: unknown, method = 'POST') =>
    fetch(`${options.registryManagementUrl}/admin${path}`, {
      method,
      headers,
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  let issued: Promise<string> | undefined;
  /** an RFC 7591 initial access token, issued once through the admin API */
  const initialAccessToken = () => {
    issued ??= (async () => {
      const res = await admin('/initial-access-tokens', { description: 'tests' });
      if (res.status !== 201) throw new Error(`initial access token: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { initial_access_token: string }).initial_access_token;
    })();
    return issued;
  };
  const api = {
    admin,
    initialAccessToken,
    /** defines scopes and waits until the authorization server's metadata lists them */
    defineScopes: async (scopes: Record<string, string>) => {
      for (const [name, description] of Object.entries(scopes)) {
        const res = await admin('/scopes', { name, description });
        if (res.status !== 201) throw new Error(`scope ${name}: ${res.status} ${await res.text()}`);
      }
      await eventually(
        async () => {
          const meta = (await (
            await fetch(`${options.issuer}/.well-known/oauth-authorization-server`)
          ).json()) as { scopes_supported: string[] };
          return Object.keys(scopes).every((s) => meta.scopes_supported.includes(s)) ? true : undefined;
        },
        { what: 'scopes in metadata' },
      );
    },
    /** RFC 7591 registration; resolves once the token service can authenticate the client */
    register: async (metadata: Record<string, unknown>) => {
      const res = await fetch(`${options.registryUrl}/oauth2/register`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await initialAccessToken()}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(metadata),
      });
      const body = (await res.json()) as Record<string, string>;
      if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${JSON.stringify(body)}`);
      await eventually(
        async () =>
          (await options.pool.query('SELECT 1 FROM token.clients WHERE client_id = $1', [body.client_id]))
            .rowCount
            ? true
            : undefined,
        { what: 'the token service to know the client' },
      );
      return body as Record<string, string> & { client_id: string };
    },
  };
  return {
    ...api,
    /**
     * A resource server for `resources`: a client_credentials client the admin API grants the role;
     * resolves once the introspection service knows it as one.
     */
    registerResourceServer: async (resources: string[], name = 'A resource server') => {
      const client = await api.register({
        client_name: name,
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
        resources,
      });
      const granted = await admin(`/clients/${client.client_id}/resource-server`, { resources }, 'PUT');
      if (granted.status !== 200)
        throw new Error(`resource-server role: ${granted.status} ${await granted.text()}`);
      await eventually(
        async () =>
          (
            await options.pool.query(
              `SELECT 1 FROM introspection.clients WHERE client_id = $1 AND served_resources <> '[]'`,
              [client.client_id],
            )
          ).rowCount
            ? true
            : undefined,
        { what: 'the introspection service to know the resource server' },
      );
      return client as typeof client & { client_secret: string };
    },
  };
};
