import { createHash, createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';

/**
 * Asymmetric keys given to a service in its configuration: P-256 only, for ES256 signatures
 * (`use: sig`) or ECDH-ES+A256KW key agreement (`use: enc`). A private key may be a JWK, a JWK set
 * or PEM blocks (PKCS#8 or SEC1), several of them newest first during a rotation; public keys are a
 * JWK or a JWK set. Every key's `kid` is its RFC 7638 thumbprint, so a PEM on one side and a JWK on
 * the other name the same key the same way.
 */
export type KeyUse = 'sig' | 'enc';

export interface PublicKeyEntry {
  kid: string;
  publicKey: KeyObject;
  /** the public JWK with `kid`, `use` and `alg` */
  publicJwk: JsonWebKey & { kid: string };
}

export interface PrivateKeyEntry extends PublicKeyEntry {
  privateKey: KeyObject;
}

export const ALG_OF_USE = { sig: 'ES256', enc: 'ECDH-ES+A256KW' } as const;

/** A configuration value that is not the kind of key it should be; the message says why. */
export class KeyMaterialError extends Error {}

/** RFC 7638 §3.2: the thumbprint of an EC key covers crv, kty, x and y, in that order. */
const thumbprint = (jwk: JsonWebKey): string =>
  createHash('sha256')
    .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
    .digest('base64url');

const describe = (publicKey: KeyObject, use: KeyUse): PublicKeyEntry => {
  if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new KeyMaterialError('must be an EC key on the P-256 curve');
  const jwk = publicKey.export({ format: 'jwk' });
  const kid = thumbprint(jwk);
  return { kid, publicKey, publicJwk: { ...jwk, kid, use, alg: ALG_OF_USE[use] } };
};

/** A JWK that says it is for something else (`use`, `alg`) is refused: most likely a swapped variable. */
const checkMarking = (jwk: Record<string, unknown>, use: KeyUse) => {
  if (jwk.use !== undefined && jwk.use !== use)
    throw new KeyMaterialError(`holds a key marked "use": "${String(jwk.use)}", expected "${use}"`);
  if (jwk.alg !== undefined && jwk.alg !== ALG_OF_USE[use])
    throw new KeyMaterialError(
      `holds a key marked "alg": "${String(jwk.alg)}", expected "${ALG_OF_USE[use]}"`,
    );
};

const jwksOf = (value: string): Record<string, unknown>[] => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new KeyMaterialError('is neither PEM nor JSON (a JWK or a JWK set)');
  }
  const keys = (parsed as { keys?: unknown }).keys ?? [parsed];
  if (!Array.isArray(keys) || keys.length === 0 || keys.some((k) => typeof k !== 'object' || k === null))
    throw new KeyMaterialError('must be a JWK or a JWK set with at least one key');
  return keys as Record<string, unknown>[];
};

const PEM = /-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g;

const keyObject = <T>(make: () => T): T => {
  try {
    return make();
  } catch (error) {
    throw new KeyMaterialError(`is not a valid key (${(error as Error).message})`);
  }
};

/** Private keys, newest first: the first one signs or is the current one, all of them verify or decrypt. */
export const parsePrivateKeys = (value: string, use: KeyUse): PrivateKeyEntry[] => {
  // PEM in an environment variable often arrives with its line breaks escaped
  const text = value.trim().replace(/\\n/g, '\n');
  const privateKeys = text.startsWith('-----BEGIN')
    ? [...text.matchAll(PEM)].map((m) => keyObject(() => createPrivateKey(m[0])))
    : jwksOf(text).map((jwk) => {
        if (typeof jwk.d !== 'string')
          throw new KeyMaterialError('holds a public key where a private key is needed');
        checkMarking(jwk, use);
        return keyObject(() => createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' }));
      });
  if (privateKeys.length === 0) throw new KeyMaterialError('holds no PEM private key');
  const entries = privateKeys.map((privateKey) => ({
    ...describe(createPublicKey(privateKey), use),
    privateKey,
  }));
  return unique(entries);
};

/**
 * Public keys (a JWK or a JWK set) of another service. Private material is refused: a service that
 * only verifies or encrypts must not hold what signs or decrypts.
 */
export const parsePublicKeys = (value: string, use: KeyUse): PublicKeyEntry[] => {
  const entries = jwksOf(value.trim()).map((jwk) => {
    if ('d' in jwk)
      throw new KeyMaterialError(
        'holds private key material: give this service only the public key (a JWK set without "d")',
      );
    checkMarking(jwk, use);
    return describe(
      keyObject(() => createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })),
      use,
    );
  });
  return unique(entries);
};

const unique = <E extends { kid: string }>(entries: E[]): E[] => {
  if (new Set(entries.map((e) => e.kid)).size !== entries.length)
    throw new KeyMaterialError('lists the same key twice');
  return entries;
};

/** The public JWK set of some private keys: what to give the services that verify or encrypt. */
export const publicJwks = (keys: readonly PublicKeyEntry[]): { keys: PublicKeyEntry['publicJwk'][] } => ({
  keys: keys.map((k) => k.publicJwk),
});

/** Symmetric keys (CSRF): 32 bytes each, base64url, comma-separated, newest first. */
export const parseSymmetricKeys = (value: string): Buffer[] => {
  const keys = value.split(',').map((s) => s.trim());
  if (keys.some((k) => !/^[A-Za-z0-9_-]{43}$/.test(k)))
    throw new KeyMaterialError('must be 32 bytes, base64url (43 characters); comma-separated to rotate');
  return keys.map((k) => Buffer.from(k, 'base64url'));
};
