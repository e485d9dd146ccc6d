import type { Clock } from '@grantline/clock';
import {
  authenticateClient,
  type ClientAuthDeps,
  handle,
  InvalidClient,
  InvalidRequest,
} from '@grantline/oauth';
import type { Request, RequestHandler, Response } from 'express';
import { isResourceServer } from '../access.ts';
import type { FactLog } from '../projections/facts.ts';
import type { RevocationPublisher, StreamItem } from '../publisher.ts';

const send = (res: Response, item: StreamItem) => {
  if (item.type === 'fact')
    res.write(`id: ${item.fact.sequence}\nevent: revocation\ndata: ${JSON.stringify(item.fact)}\n\n`);
  else
    res.write(
      `event: heartbeat\ndata: ${JSON.stringify({ time: item.time, lastSequence: item.lastSequence })}\n\n`,
    );
};

/** `Last-Event-ID` (the EventSource reconnect header), or `?after=` for clients that cannot set it. */
const resumeFrom = (req: Request): number => {
  const raw = req.get('last-event-id') ?? (typeof req.query.after === 'string' ? req.query.after : '0');
  if (!/^\d{1,15}$/.test(raw)) throw new InvalidRequest('Last-Event-ID must be a fact sequence number');
  return Number(raw);
};

/** a stream ends after this long; the subscriber resumes with `Last-Event-ID`, authenticating again */
const MAX_STREAM_MS = 60 * 60 * 1_000;

/**
 * GET /oauth2/revocations/stream: the revocations topic as Server-Sent Events, for resource servers
 * without Kafka (and the embedded mode). Every live fact after `Last-Event-ID` (event `revocation`,
 * `id` = the fact's sequence, data = the topic's `RevocationFact`), then each new fact as it is
 * published and a `heartbeat` event every second (no id, so a reconnect resumes after the last fact).
 * Authenticated as a resource-server client (client authentication as at the token endpoint).
 */
export const revocationStreamEndpoint = (deps: {
  auth: ClientAuthDeps;
  facts: FactLog;
  publisher: RevocationPublisher;
  clock: Clock;
}): RequestHandler =>
  handle(async (req, res) => {
    const caller = await authenticateClient(deps.auth, req, {});
    if (!isResourceServer(caller))
      throw new InvalidClient('the revocation stream is for resource-server clients');
    let last = resumeFrom(req);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 1000\n\n');
    // live items wait while the replay runs, then go out in order, none twice
    const pending: StreamItem[] = [];
    let replaying = true;
    const deliver = (item: StreamItem) => {
      if (item.type === 'fact') {
        if (item.fact.sequence <= last) return;
        last = item.fact.sequence;
      }
      send(res, item);
    };
    // The role was checked when the stream opened; it is checked again every heartbeat, so a client
    // whose role the admin took back (or that was disabled or deleted) stops receiving facts within
    // a second or so, and no stream outlives MAX_STREAM_MS without a new authentication.
    const current = deps.auth.lookupFresh ?? deps.auth.lookup;
    let checking = false;
    const recheck = () => {
      if (checking) return;
      checking = true;
      current(caller.clientId)
        .then((client) => {
          if (client?.status !== 'active' || !isResourceServer(client)) res.end();
        })
        .catch(() => res.end())
        .finally(() => {
          checking = false;
        });
    };
    const expiry = setTimeout(() => res.end(), MAX_STREAM_MS);
    expiry.unref();
    const stop = deps.publisher.listen((item) => {
      if (item.type === 'heartbeat') recheck();
      if (replaying) pending.push(item);
      else deliver(item);
      // the server stopped accepting (a graceful shutdown): end the stream so the drain can finish
      if ((req.socket as { server?: { listening?: boolean } }).server?.listening === false) res.end();
    });
    req.on('close', () => {
      clearTimeout(expiry);
      stop();
    });
    for (;;) {
      const batch = await deps.facts.publishedAfter(last, new Date(deps.clock.now()));
      for (const fact of batch) deliver({ type: 'fact', fact });
      if (batch.length < 1_000) break;
    }
    replaying = false;
    for (const item of pending.splice(0)) deliver(item);
  });
