import { generateKeyPairSync, type JsonWebKey, randomBytes } from 'node:crypto';
import { type KeyUse, parsePrivateKeys, publicJwks } from './key-material.ts';

export type ServiceName = 'authorization' | 'consent' | 'token' | 'registry' | 'introspection';

/**
 * Keys by purpose (ARCHITECTURE.md): each purpose has its own key pair; one service holds the
 * private key, the services that check or seal hold only the public key, so a compromised service
 * cannot forge what another signs. This table is the one place that says who holds what.
 */
export const KEY_PURPOSES = {
  /** sessions (the cookie) and login/consent challenges: authorization signs, consent verifies */
  session: {
    use: 'sig',
    holder: { service: 'authorization', variable: 'GRANTLINE_SESSION_SIGNING_KEY' },
    users: [{ service: 'consent', variable: 'GRANTLINE_SESSION_VERIFY_KEYS' }],
  },
  /** consent verdicts: consent signs, authorization verifies */
  verdict: {
    use: 'sig',
    holder: { service: 'consent', variable: 'GRANTLINE_VERDICT_SIGNING_KEY' },
    users: [{ service: 'authorization', variable: 'GRANTLINE_VERDICT_VERIFY_KEYS' }],
  },
  /** authorization codes, signed (the token service knows who made them): authorization signs, token verifies */
  codeSigning: {
    use: 'sig',
    holder: { service: 'authorization', variable: 'GRANTLINE_CODE_SIGNING_KEY' },
    users: [{ service: 'token', variable: 'GRANTLINE_CODE_VERIFY_KEYS' }],
  },
  /** authorization codes, sealed (only the token service reads them): authorization encrypts, token decrypts */
  codeEncryption: {
    use: 'enc',
    holder: { service: 'token', variable: 'GRANTLINE_CODE_DECRYPTION_KEY' },
    users: [{ service: 'authorization', variable: 'GRANTLINE_CODE_ENCRYPTION_KEY' }],
  },
  /** password hashes in user events: the registry seals, only authorization (which checks passwords) opens */
  credentials: {
    use: 'enc',
    holder: { service: 'authorization', variable: 'GRANTLINE_CREDENTIALS_DECRYPTION_KEY' },
    users: [{ service: 'registry', variable: 'GRANTLINE_CREDENTIALS_ENCRYPTION_KEY' }],
  },
  /**
   * RFC 9701 signed introspection responses: introspection signs; resource servers verify with the
   * public keys it publishes at /oauth2/introspection/jwks (no other service needs them)
   */
  introspectionSigning: {
    use: 'sig',
    holder: { service: 'introspection', variable: 'GRANTLINE_INTROSPECTION_SIGNING_KEY' },
    users: [],
  },
} as const satisfies Record<
  string,
  {
    use: KeyUse;
    holder: { service: ServiceName; variable: string };
    users: readonly { service: ServiceName; variable: string }[];
  }
>;

export type KeyPurpose = keyof typeof KEY_PURPOSES;

/** Symmetric CSRF keys: each page-serving service has its own, shared with no other service. */
export const CSRF_KEY_VARIABLE = 'GRANTLINE_CSRF_KEY';
export const CSRF_KEY_HOLDERS = ['authorization', 'consent'] as const satisfies readonly ServiceName[];

/** Private key material of every purpose, as development and tests generate it. */
export interface KeyMaterial {
  keys: Record<KeyPurpose, JsonWebKey>;
  csrf: Record<(typeof CSRF_KEY_HOLDERS)[number], string>;
}

const newPrivateJwk = (): JsonWebKey =>
  generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

/**
 * New key material; with `existing`, only what it lacks is generated (a development file written by
 * an older version keeps its keys).
 */
export const generateKeyMaterial = (
  existing: Partial<{ [K in keyof KeyMaterial]: Partial<KeyMaterial[K]> }> = {},
): KeyMaterial => {
  const keys = Object.fromEntries(
    Object.keys(KEY_PURPOSES).map((p) => [p, existing.keys?.[p as KeyPurpose] ?? newPrivateJwk()]),
  ) as KeyMaterial['keys'];
  const csrf = Object.fromEntries(
    CSRF_KEY_HOLDERS.map((s) => [s, existing.csrf?.[s] ?? randomBytes(32).toString('base64url')]),
  ) as KeyMaterial['csrf'];
  return { keys, csrf };
};

/** The key variables of each service: its own private keys, and only the public keys of the others. */
export const serviceKeyEnv = (material: KeyMaterial): Record<ServiceName, Record<string, string>> => {
  const env: Record<ServiceName, Record<string, string>> = {
    authorization: {},
    consent: {},
    token: {},
    registry: {},
    introspection: {},
  };
  for (const [purpose, spec] of Object.entries(KEY_PURPOSES)) {
    const jwk = material.keys[purpose as KeyPurpose];
    env[spec.holder.service][spec.holder.variable] = JSON.stringify(jwk);
    const publicSet = JSON.stringify(publicJwks(parsePrivateKeys(JSON.stringify(jwk), spec.use)));
    for (const user of spec.users) env[user.service][user.variable] = publicSet;
  }
  for (const service of CSRF_KEY_HOLDERS) env[service][CSRF_KEY_VARIABLE] = material.csrf[service];
  return env;
};

/** Every variable that carries a key, of any service. */
export const KEY_VARIABLES: readonly string[] = [
  ...Object.values(KEY_PURPOSES).flatMap((p) => [p.holder.variable, ...p.users.map((u) => u.variable)]),
  CSRF_KEY_VARIABLE,
];
