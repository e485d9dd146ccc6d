import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { CompactEncrypt, compactDecrypt, type JWTPayload, jwtVerify, SignJWT } from 'jose';

/**
 * The keys of the browser hand-offs between services (authorization -> consent -> authorization ->
 * token), derived with HKDF from one shared secret, `GRANTLINE_FLOW_SECRET`: HS256 for signed
 * challenges and the session cookie, A256GCM (`dir`) for authorization codes, HMAC for CSRF tokens.
 *
 * The secret may be a comma-separated list for rotation: the first one signs and encrypts, all of
 * them verify and decrypt, each found by its `kid`. Nothing here ever leaves the services that
 * share the secret; the code is opaque to the client and the browser.
 */
export class FlowKeys {
  private readonly keys: { kid: string; sign: Uint8Array; encrypt: Uint8Array; csrf: Buffer }[];

  private constructor(secrets: Buffer[]) {
    this.keys = secrets.map((secret) => {
      const derive = (purpose: string) =>
        Buffer.from(hkdfSync('sha256', secret, 'grantline', `grantline flow ${purpose}`, 32));
      const kid = createHash('sha256').update(secret).digest('base64url').slice(0, 12);
      return {
        kid,
        sign: new Uint8Array(derive('sign')),
        encrypt: new Uint8Array(derive('encrypt')),
        csrf: derive('csrf'),
      };
    });
  }

  /** `value`: one or more base64url secrets of 32 bytes, comma-separated, newest first. */
  static from(value: string): FlowKeys {
    const secrets = value.split(',').map((s) => Buffer.from(s.trim(), 'base64url'));
    if (secrets.length === 0 || secrets.some((s) => s.length !== 32))
      throw new Error(
        'GRANTLINE_FLOW_SECRET must be 32 bytes, base64url-encoded (comma-separated to rotate)',
      );
    return new FlowKeys(secrets);
  }

  /** A short-lived signed statement of type `typ` (a challenge, a verdict, a session). */
  sign(typ: string, payload: JWTPayload, ttlSeconds: number): Promise<string> {
    const key = this.keys[0]!;
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'HS256', typ, kid: key.kid })
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(key.sign);
  }

  /** The payload of a statement of type `typ` signed by any current key; undefined when invalid or expired. */
  async verify<T extends object>(typ: string, jws: string | undefined): Promise<T | undefined> {
    if (!jws || jws.length > 16_384) return undefined;
    try {
      const { payload } = await jwtVerify(jws, (header) => this.byKid(header.kid).sign, {
        algorithms: ['HS256'],
        typ,
      });
      return payload as unknown as T;
    } catch {
      return undefined;
    }
  }

  /** An authorization code: the grant it carries, encrypted (JWE `dir` + `A256GCM`). */
  encrypt(payload: object): Promise<string> {
    const key = this.keys[0]!;
    return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.kid })
      .encrypt(key.encrypt);
  }

  /** The payload of a code; undefined when it was not made with one of our keys or is malformed. */
  async decrypt<T>(jwe: string): Promise<T | undefined> {
    if (jwe.length > 16_384) return undefined;
    try {
      const { plaintext } = await compactDecrypt(jwe, (header) => this.byKid(header.kid).encrypt, {
        keyManagementAlgorithms: ['dir'],
        contentEncryptionAlgorithms: ['A256GCM'],
      });
      return JSON.parse(new TextDecoder().decode(plaintext)) as T;
    } catch {
      return undefined;
    }
  }

  /** A CSRF token bound to `binding` (a session or pre-session cookie and the flow it protects). */
  csrfToken(binding: string): string {
    return createHmac('sha256', this.keys[0]!.csrf).update(binding).digest('base64url');
  }

  /** Constant-time check of a CSRF token against every current key. */
  csrfValid(binding: string, token: string | undefined): boolean {
    if (!token) return false;
    const given = Buffer.from(token);
    return this.keys.some((k) => {
      const expected = Buffer.from(createHmac('sha256', k.csrf).update(binding).digest('base64url'));
      return expected.length === given.length && timingSafeEqual(expected, given);
    });
  }

  private byKid(kid: string | undefined) {
    const key = this.keys.find((k) => k.kid === kid);
    if (!key) throw new Error('unknown key id');
    return key;
  }
}
