import { createHash } from 'node:crypto';

/**
 * A statement `pg` prepares once per connection and then only binds and executes: no parse and no
 * plan per call. For the hot paths' fixed texts (a text built per call would fill every connection
 * with statements). Named by a digest of the text, so two schemas' texts on one pool (the embedded
 * mode) never share a name; PGlite ignores the name.
 */
export const prepared = (text: string): { readonly name: string; readonly text: string } => {
  let statement = statements.get(text);
  if (!statement) {
    statement = { name: `gl_${createHash('sha256').update(text).digest('base64url').slice(0, 24)}`, text };
    statements.set(text, statement);
  }
  return statement;
};

const statements = new Map<string, { readonly name: string; readonly text: string }>();
