import { z } from 'zod';

/** Identifiers: opaque, printable, bounded. */
export const Id = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/** RFC 6749 §3.3 scope-token: 1*( %x21 / %x23-5B / %x5D-7E ). */
export const ScopeToken = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'RFC 6749 scope-token');

export const Scopes = z.array(ScopeToken).max(100);

export const Timestamp = z.iso.datetime({ offset: true });
