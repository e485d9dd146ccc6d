import { describe, expect, it } from 'vitest';
import { DenyList } from '../src/deny-list.ts';
import { serverSentEvents } from '../src/sse.ts';

const streamOf = (...chunks: string[]) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
      controller.close();
    },
  });

const all = async (body: ReadableStream<Uint8Array>) => {
  const events = [];
  for await (const e of serverSentEvents(body)) events.push(e);
  return events;
};

describe('Server-Sent Events parsing', () => {
  it('dispatches on a blank line, across chunk boundaries and line endings (LF, CRLF split between chunks, CR)', async () => {
    const events = await all(
      streamOf(
        'retry: 1000\n\n: a comment\n',
        'id: 7\nevent: revoc',
        'ation\ndata: {"key":"jti:a"}\r',
        '\n\r\nevent: heartbeat\rdata: {"time":"t"}\r\r',
      ),
    );
    expect(events).toEqual([
      { event: 'revocation', data: '{"key":"jti:a"}', id: '7' },
      { event: 'heartbeat', data: '{"time":"t"}' },
    ]);
  });

  it('joins multi-line data and drops an event left unterminated at the end', async () => {
    expect(await all(streamOf('data: a\ndata: b\n\ndata: unfinished'))).toEqual([
      { event: 'message', data: 'a\nb' },
    ]);
  });
});

describe('the deny-list', () => {
  const fact = (key: string, expiresAt: number, sequence = 1) => ({
    key,
    revokedAt: new Date(0).toISOString(),
    expiresAt: new Date(expiresAt).toISOString(),
    sequence,
  });

  it('denies until expiresAt, never shortens a fact, and is fresh only after a heartbeat within the budget while connected', () => {
    let now = 1_000_000;
    const list = new DenyList(() => now);
    list.apply(fact('grant:g', now + 10_000));
    list.apply(fact('grant:g', now + 5_000, 2));
    list.apply(fact('jti:expired', now - 1, 3));
    expect(list.revoked(['jti:expired', 'grant:g'])).toBe('grant:g');
    expect(list.lastSequence).toBe(3);
    expect(list.isFresh(5_000)).toBe(false);
    list.heartbeat();
    expect(list.isFresh(5_000)).toBe(true);
    now += 9_000;
    expect(list.isFresh(5_000)).toBe(false);
    expect(list.revoked(['grant:g'])).toBe('grant:g');
    list.heartbeat();
    list.disconnected();
    expect(list.isFresh(5_000)).toBe(false);
    now += 1_001;
    expect(list.revoked(['grant:g'])).toBeUndefined();
    list.close();
  });

  it("a subject's or client's revocation denies the tokens issued up to it, not those issued after", () => {
    const now = 1_000_000;
    const list = new DenyList(() => now);
    for (const key of ['sub:u', 'client:c', 'grant:g'])
      list.apply({
        key,
        revokedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + 60_000).toISOString(),
        sequence: 1,
      });
    for (const key of ['sub:u', 'client:c', 'grant:g']) {
      expect(list.revoked([key], now - 1_000), key).toBe(key);
      expect(list.revoked([key], now), key).toBe(key);
    }
    expect(list.revoked(['sub:u'], now + 1_000)).toBeUndefined();
    expect(list.revoked(['client:c'], now + 1_000)).toBeUndefined();
    // a grant, a token or an organisation never comes back, whenever the token was issued
    expect(list.revoked(['grant:g'], now + 1_000)).toBe('grant:g');
    list.close();
  });
});
