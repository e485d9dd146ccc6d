import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  generateKeyMaterial,
  KEY_PURPOSES,
  parsePrivateKeys,
  parsePublicKeys,
  publicJwks,
  serviceKeyEnv,
} from '../src/index.ts';

const pair = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

describe('key material', () => {
  it('names a key by its thumbprint, whether given as PEM or JWK, and keeps the order (newest first)', () => {
    const [a, b] = [pair(), pair()];
    const pem = [a, b].map((k) => k.privateKey.export({ format: 'pem', type: 'pkcs8' })).join('\n');
    const fromPem = parsePrivateKeys(pem, 'sig');
    const fromJwks = parsePrivateKeys(
      JSON.stringify({ keys: [a, b].map((k) => k.privateKey.export({ format: 'jwk' })) }),
      'sig',
    );
    expect(fromPem.map((k) => k.kid)).toEqual(fromJwks.map((k) => k.kid));
    expect(parsePublicKeys(JSON.stringify(publicJwks(fromPem)), 'sig').map((k) => k.kid)).toEqual(
      fromPem.map((k) => k.kid),
    );
    // PEM with escaped line breaks, as it often arrives in an environment variable
    expect(parsePrivateKeys(pem.replace(/\n/g, '\\n'), 'sig')).toHaveLength(2);
  });

  it('finding 5: refuses private material where only a public key belongs, and a key marked for the other use', () => {
    const jwk = pair().privateKey.export({ format: 'jwk' });
    expect(() => parsePublicKeys(JSON.stringify(jwk), 'sig')).toThrow(/private key material/);
    const encryptionKeys = JSON.stringify(publicJwks(parsePrivateKeys(JSON.stringify(jwk), 'enc')));
    expect(() => parsePublicKeys(encryptionKeys, 'sig')).toThrow(/"use": "enc", expected "sig"/);
    expect(() => parsePrivateKeys(JSON.stringify({ ...jwk, d: undefined }), 'sig')).toThrow(/public key/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'jwk' });
    expect(() => parsePrivateKeys(JSON.stringify(p384), 'sig')).toThrow(/P-256/);
  });

  it('finding 5: gives each service its own private keys and only the public keys of the others', () => {
    const material = generateKeyMaterial();
    const env = serviceKeyEnv(material);
    for (const [purpose, spec] of Object.entries(KEY_PURPOSES)) {
      const privateJwk = JSON.stringify(material.keys[purpose as keyof typeof material.keys]);
      for (const [service, variables] of Object.entries(env)) {
        const holds = Object.values(variables).some((v) => v.includes(JSON.parse(privateJwk).d));
        expect(holds, `${service} holds the ${purpose} private key`).toBe(service === spec.holder.service);
      }
    }
    expect(env.token).not.toHaveProperty('GRANTLINE_CSRF_KEY');
    expect(env.authorization.GRANTLINE_CSRF_KEY).not.toBe(env.consent.GRANTLINE_CSRF_KEY);
  });

  it('keeps what an older development file already has, and adds what it lacks', () => {
    const old = generateKeyMaterial();
    const { session, ...rest } = old.keys;
    const upgraded = generateKeyMaterial({ keys: rest, csrf: old.csrf });
    expect(upgraded.keys.verdict).toEqual(old.keys.verdict);
    expect(upgraded.csrf).toEqual(old.csrf);
    expect(upgraded.keys.session.d).toBeTruthy();
    expect(upgraded.keys.session).not.toEqual(session);
  });
});
