// An example resource server ("invoices API") protected by @grantline/resource-server:
//   GRANTLINE_ISSUER=http://127.0.0.1:8080 GRANTLINE_JWKS_URI=http://127.0.0.1:8080/oauth2/jwks \
//   RESOURCE_AUDIENCE=http://127.0.0.1:8080 npx tsx examples/resource-server/server.ts
import {
  type ResourceServerOptions,
  requireAccessToken,
  requireOrganisation,
  requireScopes,
} from '@grantline/resource-server';
import express from 'express';

export const invoicesApi = (options: ResourceServerOptions) => {
  const app = express();
  const authenticated = requireAccessToken(options);
  app.get(
    '/organisations/:organisationId/invoices',
    authenticated,
    requireScopes('invoices.read'),
    requireOrganisation(),
    (req, res) => {
      res.json({ organisation: req.params.organisationId, invoices: [{ id: 'INV-1', total: 42 }] });
    },
  );
  app.post(
    '/organisations/:organisationId/invoices',
    authenticated,
    requireScopes('invoices.write'),
    requireOrganisation(),
    (_req, res) => {
      res.status(201).json({ id: 'INV-2' });
    },
  );
  return app;
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 8090);
  invoicesApi({
    issuer: process.env.GRANTLINE_ISSUER ?? 'http://127.0.0.1:8080',
    jwksUri: process.env.GRANTLINE_JWKS_URI ?? 'http://127.0.0.1:8080/oauth2/jwks',
    audience: process.env.RESOURCE_AUDIENCE ?? process.env.GRANTLINE_ISSUER ?? 'http://127.0.0.1:8080',
  }).listen(port, '127.0.0.1', () => console.log(`invoices API on http://127.0.0.1:${port}`));
}
