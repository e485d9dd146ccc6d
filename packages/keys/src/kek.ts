import { readFileSync } from 'node:fs';
import { CompactEncrypt, compactDecrypt } from 'jose';

/**
 * The key-encryption key that protects signing keys at rest: 32 bytes, base64url, from the
 * environment or a mounted secret file. Private keys are stored only as JWE (`dir`, `A256GCM`).
 */
export class KeyEncryptionKey {
  private constructor(private readonly key: Uint8Array) {}

  static from(options: { value?: string | undefined; file?: string | undefined }): KeyEncryptionKey {
    const raw = options.file ? readFileSync(options.file, 'utf8').trim() : options.value;
    if (!raw)
      throw new Error(
        'a key-encryption key is required (GRANTLINE_KEY_ENCRYPTION_KEY or GRANTLINE_KEY_ENCRYPTION_KEY_FILE)',
      );
    const key = Buffer.from(raw, 'base64url');
    if (key.length !== 32) throw new Error('the key-encryption key must be 32 bytes, base64url-encoded');
    return new KeyEncryptionKey(new Uint8Array(key));
  }

  encrypt(plaintext: string, kid: string): Promise<string> {
    return new CompactEncrypt(new TextEncoder().encode(plaintext))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', cty: 'jwk+json', kid })
      .encrypt(this.key);
  }

  async decrypt(jwe: string): Promise<string> {
    const { plaintext } = await compactDecrypt(jwe, this.key);
    return new TextDecoder().decode(plaintext);
  }
}
