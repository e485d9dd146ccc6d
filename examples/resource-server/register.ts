/**
 * Registers the example as a resource-server client of Grantline (README "Resource servers"): an
 * initial access token from the admin API on the management port, RFC 7591 registration with the
 * client_credentials grant only, then the admin API makes it the resource server of its own URL
 * (RFC 8707 resource). Only that grant lets it read the revocation stream and introspect tokens for
 * that audience: a client cannot declare itself a resource server.
 */
export const registerResourceServer = async (options: {
  registrationEndpoint: string;
  managementUrl: string;
  adminToken: string;
  resource: string;
  name?: string;
}): Promise<{ clientId: string; clientSecret: string }> => {
  const issued = await fetch(new URL('/admin/initial-access-tokens', options.managementUrl), {
    method: 'POST',
    headers: { authorization: `Bearer ${options.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ description: options.name ?? 'Invoices API (example resource server)' }),
  });
  if (issued.status !== 201 && issued.status !== 200)
    throw new Error(
      `the admin API refused an initial access token (${issued.status}): is GRANTLINE_ADMIN_TOKEN right?`,
    );
  const { initial_access_token } = (await issued.json()) as { initial_access_token: string };
  const registered = await fetch(options.registrationEndpoint, {
    method: 'POST',
    headers: { authorization: `Bearer ${initial_access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: options.name ?? 'Invoices API',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'client_secret_basic',
      resources: [options.resource],
    }),
  });
  if (registered.status !== 201)
    throw new Error(`registration failed (${registered.status}): ${await registered.text()}`);
  const { client_id, client_secret } = (await registered.json()) as {
    client_id: string;
    client_secret: string;
  };
  const granted = await fetch(
    new URL(`/admin/clients/${encodeURIComponent(client_id)}/resource-server`, options.managementUrl),
    {
      method: 'PUT',
      headers: { authorization: `Bearer ${options.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ resources: [options.resource] }),
    },
  );
  if (granted.status !== 200)
    throw new Error(
      `the admin API refused the resource-server role (${granted.status}): ${await granted.text()}`,
    );
  return { clientId: client_id, clientSecret: client_secret };
};
