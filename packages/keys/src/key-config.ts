import { z } from 'zod';
import {
  KeyMaterialError,
  type KeyUse,
  parsePrivateKeys,
  parsePublicKeys,
  parseSymmetricKeys,
} from './key-material.ts';

/**
 * zod pieces for the key variables of a service's configuration: each parses its value into keys
 * at start-up, and a value that is not what it should be stops the service with a sentence saying
 * why (`GRANTLINE_SESSION_VERIFY_KEYS: holds private key material: ...`).
 */
const parsed = <T>(parse: (value: string) => T) =>
  z.string().transform((value, ctx): T => {
    try {
      return parse(value);
    } catch (error) {
      if (!(error instanceof KeyMaterialError)) throw error;
      ctx.addIssue({ code: 'custom', message: error.message });
      return z.NEVER;
    }
  });

/** This service's private key(s) for one purpose: a JWK, a JWK set or PEM, newest first. */
export const privateKeysVariable = (use: KeyUse) => parsed((v) => parsePrivateKeys(v, use));

/** Another service's public key(s) for one purpose: a JWK or a JWK set, without private parts. */
export const publicKeysVariable = (use: KeyUse) => parsed((v) => parsePublicKeys(v, use));

/** This service's own symmetric key(s): 32 bytes base64url, comma-separated, newest first. */
export const symmetricKeysVariable = () => parsed(parseSymmetricKeys);
