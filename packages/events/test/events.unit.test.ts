import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  eventCatalogue,
  InvalidEventError,
  jsonSchemaOf,
  TOPICS,
  validateCloudEventData,
  validateEvent,
} from '../src/index.ts';

const schemasDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'schemas');

describe('event catalogue', () => {
  it('routes each event to its topic with a versioned CloudEvents type', () => {
    expect(eventCatalogue.get('GrantCreated')).toMatchObject({
      topic: TOPICS.grants,
      ceType: 'dev.grantline.GrantCreated.v1',
    });
    expect(eventCatalogue.get('AccessTokenIssued')).toMatchObject({ topic: TOPICS.tokens });
  });

  it('publishes a JSON Schema for every event type, identical to the committed one (run `pnpm schemas`)', () => {
    for (const d of eventCatalogue.values()) {
      const committed = JSON.parse(readFileSync(join(schemasDir, `${d.ceType}.json`), 'utf8'));
      expect(committed, d.type).toEqual(jsonSchemaOf(d.type));
      expect(committed.additionalProperties).toBe(false);
    }
  });

  it('accepts a valid event and refuses unknown fields, bad scopes and unknown types, naming the problem', () => {
    const data = { grantId: 'g1', subject: 's', clientId: 'c', organisations: ['o'], scopes: ['a.read'] };
    expect(validateEvent({ type: 'GrantCreated', data })).toEqual({ type: 'GrantCreated', data });
    expect(() => validateEvent({ type: 'GrantCreated', data: { ...data, token: 'x' } })).toThrow(
      /Unrecognized key: "token"/,
    );
    expect(() => validateEvent({ type: 'GrantCreated', data: { ...data, scopes: ['a "b'] } })).toThrow(
      /scopes.0: .*scope-token/,
    );
    expect(() => validateCloudEventData('dev.grantline.Nope.v1', {})).toThrow(InvalidEventError);
  });

  it('keeps token material out of token events: only ids and claims are allowed', () => {
    const issued = {
      jti: 'j',
      clientId: 'c',
      subject: 's',
      grantType: 'client_credentials',
      scopes: [],
      audience: ['https://api'],
      expiresAt: '2026-11-22T10:00:00Z',
    };
    expect(() => validateEvent({ type: 'AccessTokenIssued', data: issued })).not.toThrow();
    expect(() =>
      validateEvent({ type: 'AccessTokenIssued', data: { ...issued, access_token: 'eyJ...' } }),
    ).toThrow(InvalidEventError);
  });
});
