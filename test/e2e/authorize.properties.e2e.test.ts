import fc from 'fast-check';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { authorize, authorizeCases } from './hostile/authorize-cases.ts';
import { type Fixture, startFixture } from './hostile/fixture.ts';
import { RUNS } from './hostile/generators.ts';

/**
 * Property-based hostile input (fast-check) at the authorization endpoint (GET query, POST form):
 * never a 5xx, never a hang, and never a redirect anywhere but the client's registered redirect URI,
 * its own sign-in page or the consent service. 150 runs per property; PROPERTY_RUNS=3000 for a deeper
 * local search.
 */

describe('hostile parameters (property-based)', () => {
  let f: Fixture;

  beforeAll(async () => {
    f = await startFixture();
  }, 120_000);
  afterAll(() => f?.stop());

  it('GET /oauth2/authorize: no 5xx, no hang, no redirect but to the registered redirect URI', async () => {
    await fc.assert(
      fc.asyncProperty(authorizeCases(f), (c) => authorize(f, c, 'GET')),
      RUNS,
    );
  }, 60_000);

  it('POST /oauth2/authorize: no 5xx, no hang, no redirect but to the registered redirect URI', async () => {
    await fc.assert(
      fc.asyncProperty(authorizeCases(f), (c) => authorize(f, c, 'POST')),
      RUNS,
    );
  }, 60_000);
});
