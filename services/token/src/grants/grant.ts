import type { ClientRecord } from '@grantline/oauth';
import type { TokenResponse } from '../issuer.ts';

export interface GrantContext {
  client: ClientRecord;
  form: Record<string, string>;
  /** RFC 8707 `resource` values (the one parameter that may repeat) */
  resources: readonly string[];
}

/** One grant type = one module, registered in a map (never an if-chain). */
export interface Grant {
  grantType: string;
  handle(context: GrantContext): Promise<TokenResponse>;
}
