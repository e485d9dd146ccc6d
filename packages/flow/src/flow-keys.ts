import { createHmac, timingSafeEqual } from 'node:crypto';
import { type Clock, epochSeconds, systemClock } from '@grantline/clock';
import type { PrivateKeyEntry, PublicKeyEntry } from '@grantline/keys';
import { seal, unseal } from '@grantline/keys';
import { errors, jwtVerify, SignJWT } from 'jose';
import {
  type AuthorizationCode,
  SIGNED_WITH,
  type SigningPurpose,
  STATEMENT,
  type StatementClaims,
  type StatementType,
} from './statements.ts';

const MAX_LENGTH = 16_384;

/** What one service holds, by purpose (each service's config.ts says which). */
export interface FlowKeyOptions {
  /** private keys of what this service signs: the first signs, all verify (rotation by `kid`) */
  signing?: Partial<Record<SigningPurpose, readonly PrivateKeyEntry[]>>;
  /** public keys of what another service signs and this one only checks */
  verifying?: Partial<Record<SigningPurpose, readonly PublicKeyEntry[]>>;
  /** the token service's public code key: the first one seals codes */
  codeEncryption?: readonly PublicKeyEntry[];
  /** the token service's private code keys: each opens the codes sealed to it */
  codeDecryption?: readonly PrivateKeyEntry[];
  /** this service's own CSRF keys: the first one makes tokens, all check them */
  csrf?: readonly Buffer[];
  /** what `iat`, `exp` and the expiry checks read (default: the system clock) */
  clock?: Clock;
}

export type Verified<T extends StatementType> = StatementClaims[T] & { iat: number; exp: number };

/**
 * The keys of the browser hand-offs, as one service holds them: statements are ES256 JWS with an
 * explicit `typ` (RFC 8725 §3.11), each type signed by its own purpose's key; codes are signed by
 * the authorization service and then sealed to the token service (nested JWT, RFC 7519 §11.2), so
 * only the token service can read one and only the authorization service can have made it.
 */
export class FlowKeys {
  private readonly clock: Clock;

  constructor(private readonly options: FlowKeyOptions) {
    this.clock = options.clock ?? systemClock;
  }

  /** A short-lived signed statement; throws if this service holds no key to sign this type. */
  async sign<T extends StatementType>(
    typ: T,
    claims: StatementClaims[T],
    ttlSeconds: number,
  ): Promise<string> {
    const purpose = SIGNED_WITH[typ];
    const key = this.options.signing?.[purpose]?.[0];
    if (!key) throw new Error(`this service holds no ${purpose} key and cannot sign ${typ}`);
    const now = epochSeconds(this.clock);
    return new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'ES256', typ, kid: key.kid })
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSeconds)
      .sign(key.privateKey);
  }

  /** The claims of a statement of type `typ` signed by a key this service trusts for it; else undefined. */
  verify<T extends StatementType>(typ: T, jws: string | undefined): Promise<Verified<T> | undefined> {
    return this.verified(typ, jws, false);
  }

  private async verified<T extends StatementType>(
    typ: T,
    jws: string | undefined,
    evenExpired: boolean,
  ): Promise<Verified<T> | undefined> {
    if (!jws || jws.length > MAX_LENGTH) return undefined;
    const purpose = SIGNED_WITH[typ];
    const keys = [...(this.options.signing?.[purpose] ?? []), ...(this.options.verifying?.[purpose] ?? [])];
    try {
      const { payload } = await jwtVerify(
        jws,
        (header) => {
          const key = keys.find((k) => k.kid === header.kid);
          if (!key) throw new Error('unknown key id');
          return key.publicKey;
        },
        { algorithms: ['ES256'], typ, currentDate: new Date(this.clock.now()) },
      );
      return payload as unknown as Verified<T>;
    } catch (error) {
      // jose checks claims only after the signature: an expired statement is still a genuine one
      if (evenExpired && error instanceof errors.JWTExpired) return error.payload as unknown as Verified<T>;
      return undefined;
    }
  }

  /** An authorization code: signed by this (the authorization) service, sealed to the token service. */
  async encrypt(code: AuthorizationCode, ttlSeconds: number): Promise<string> {
    const to = this.options.codeEncryption?.[0];
    if (!to) throw new Error('this service holds no code encryption key');
    return seal(to, await this.sign(STATEMENT.code, code, ttlSeconds), 'JWT');
  }

  /**
   * A code's claims, if it was sealed to one of our keys and signed by a trusted code key; else
   * undefined. An expired code is returned too (check `exp`), so that the caller can say so.
   */
  async decrypt(jwe: string): Promise<Verified<typeof STATEMENT.code> | undefined> {
    const jws = await unseal(this.options.codeDecryption ?? [], jwe);
    return jws === undefined ? undefined : this.verified(STATEMENT.code, jws, true);
  }

  /** A CSRF token bound to `binding` (a session or pre-session cookie and the flow it protects). */
  csrfToken(binding: string): string {
    const key = this.options.csrf?.[0];
    if (!key) throw new Error('this service holds no CSRF key');
    return createHmac('sha256', key).update(binding).digest('base64url');
  }

  /** Constant-time check of a CSRF token against each of this service's CSRF keys. */
  csrfValid(binding: string, token: string | undefined): boolean {
    if (!token) return false;
    const given = Buffer.from(token);
    return (this.options.csrf ?? []).some((key) => {
      const expected = Buffer.from(createHmac('sha256', key).update(binding).digest('base64url'));
      return expected.length === given.length && timingSafeEqual(expected, given);
    });
  }
}
