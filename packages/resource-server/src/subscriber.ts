import { DenyList, type RevocationFact } from './deny-list.ts';
import { serverSentEvents } from './sse.ts';

export interface RevocationStreamOptions {
  /** `GET /oauth2/revocations/stream` of the introspection service */
  url: string;
  /** this resource server's client credentials (a resource-server client: client_credentials only, with `resources`) */
  clientId: string;
  clientSecret: string;
  /** first reconnect delay, doubled on each failure up to `maxBackoffMs`, with full jitter (defaults 250 / 10,000) */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** how long a connection may go without any event before it is dropped and remade (default 5,000 ms; heartbeats come every second) */
  idleTimeoutMs?: number;
  now?: () => number;
  /** told of each failed connection (default: none) */
  onError?: (error: unknown) => void;
}

/** The credentials were refused: retrying will not help. */
export class SubscriptionRefused extends Error {
  readonly retriable = false;
}

export interface RevocationSubscriber {
  readonly denyList: DenyList;
  /** resolves once the live facts are replayed (the first heartbeat); rejects if the credentials are refused */
  ready(): Promise<void>;
  close(): Promise<void>;
}

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/**
 * Keeps a deny-list warm from the introspection service's revocation stream (Server-Sent Events
 * over fetch: no framework, no EventSource polyfill). The stream replays every live fact, then
 * sends new facts and a heartbeat every second; the first heartbeat therefore marks the bootstrap
 * done. A dropped or silent connection is remade with `Last-Event-ID` (the last fact's sequence),
 * after an exponential backoff with jitter; meanwhile the deny-list reports itself stale.
 */
export const subscribeToRevocationStream = (options: RevocationStreamOptions): RevocationSubscriber => {
  const denyList = new DenyList(options.now);
  const base = options.backoffMs ?? 250;
  const max = options.maxBackoffMs ?? 10_000;
  const idle = options.idleTimeoutMs ?? 5_000;
  let closed = false;
  let heartbeats = 0;
  let current: AbortController | undefined;
  let settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  const bootstrapped = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  bootstrapped.catch(() => {});

  const connectOnce = async () => {
    const abort = new AbortController();
    current = abort;
    let watchdog = setTimeout(() => abort.abort(), idle);
    const res = await fetch(options.url, {
      headers: {
        authorization: basic(options.clientId, options.clientSecret),
        accept: 'text/event-stream',
        ...(denyList.lastSequence > 0 && { 'last-event-id': String(denyList.lastSequence) }),
      },
      signal: abort.signal,
    });
    if (res.status === 401 || res.status === 403)
      throw new SubscriptionRefused(`the revocation stream refused this client (${res.status})`);
    if (res.status !== 200 || !res.body) throw new Error(`the revocation stream answered ${res.status}`);
    try {
      for await (const event of serverSentEvents(res.body)) {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => abort.abort(), idle);
        if (event.event === 'revocation') denyList.apply(JSON.parse(event.data) as RevocationFact);
        else if (event.event === 'heartbeat') {
          denyList.heartbeat();
          heartbeats++;
          settle?.resolve();
        }
      }
    } finally {
      clearTimeout(watchdog);
    }
  };

  const run = async () => {
    let failures = 0;
    while (!closed) {
      const before = heartbeats;
      try {
        await connectOnce();
      } catch (error) {
        if (closed) break;
        if (error instanceof SubscriptionRefused) {
          settle?.reject(error);
          closed = true;
          break;
        }
        options.onError?.(error);
      } finally {
        denyList.disconnected();
      }
      // a connection that delivered a heartbeat resets the backoff
      failures = heartbeats > before ? 0 : failures + 1;
      const delay = Math.random() * Math.min(max, base * 2 ** failures);
      // unref: a closed subscriber does not hold the process open through its backoff
      await new Promise((r) => setTimeout(r, delay).unref());
    }
  };
  void run();

  return {
    denyList,
    ready: () => bootstrapped,
    close: async () => {
      closed = true;
      current?.abort();
      denyList.close();
    },
  };
};
