import { CompactEncrypt, compactDecrypt } from 'jose';
import type { PrivateKeyEntry, PublicKeyEntry } from './key-material.ts';

const ALG = 'ECDH-ES+A256KW';
const ENC = 'A256GCM';
const MAX_LENGTH = 16_384;

/**
 * Seals to a public key (JWE compact, RFC 7516, `ECDH-ES+A256KW` + `A256GCM`): anyone holding the
 * public key can seal, only the holder of the private key can open. It gives confidentiality, not
 * origin: what must also prove who made it is signed before it is sealed.
 */
export const seal = (to: PublicKeyEntry, plaintext: string, cty?: string): Promise<string> =>
  new CompactEncrypt(new TextEncoder().encode(plaintext))
    .setProtectedHeader({ alg: ALG, enc: ENC, kid: to.kid, ...(cty && { cty }) })
    .encrypt(to.publicKey);

/** The plaintext of a sealed value, opened with the private key its `kid` names; undefined if none can. */
export const unseal = async (keys: readonly PrivateKeyEntry[], jwe: string): Promise<string | undefined> => {
  if (jwe.length > MAX_LENGTH) return undefined;
  try {
    const { plaintext } = await compactDecrypt(
      jwe,
      (header) => {
        const key = keys.find((k) => k.kid === header.kid);
        if (!key) throw new Error('unknown key id');
        return key.privateKey;
      },
      { keyManagementAlgorithms: [ALG], contentEncryptionAlgorithms: [ENC] },
    );
    return new TextDecoder().decode(plaintext);
  } catch {
    return undefined;
  }
};
