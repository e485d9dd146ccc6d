import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * How a cut looks to the client: `reset`, every connection it had is destroyed and new ones are
 * accepted and closed at once (a refused route); `blackhole`, connections stay open and new ones are
 * accepted, but no byte gets through either way (packets dropped: the client hears nothing until
 * its own timeouts fire).
 */
export type Cut = 'reset' | 'blackhole';

/**
 * A TCP proxy a fault test puts between one client and one server, then cuts: a partition between
 * just those two, everything else still reaches the server.
 */
export interface TcpProxy {
  /** the proxy's own port on 127.0.0.1 */
  readonly port: number;
  /** `127.0.0.1:<port>` */
  readonly address: string;
  /** how many connections it has accepted in all (forwarded or not) */
  readonly accepted: number;
  cut(how?: Cut): void;
  /** forwards new connections again; connections held in a blackhole are closed (the client reconnects) */
  heal(): void;
  close(): Promise<void>;
}

export const startTcpProxy = async (target: { host: string; port: number }): Promise<TcpProxy> => {
  let cut: Cut | undefined;
  let accepted = 0;
  const pairs = new Set<[Socket, Socket | undefined]>();
  const swallow = (s: Socket) => {
    s.unpipe();
    s.removeAllListeners('data');
    s.on('data', () => {});
    s.resume();
  };
  const server: Server = createServer((client) => {
    accepted++;
    client.on('error', () => {});
    if (cut === 'reset') {
      client.destroy();
      return;
    }
    if (cut === 'blackhole') {
      const pair: [Socket, Socket | undefined] = [client, undefined];
      pairs.add(pair);
      client.on('close', () => pairs.delete(pair));
      swallow(client);
      return;
    }
    const upstream = connect(target.port, target.host);
    const pair: [Socket, Socket | undefined] = [client, upstream];
    pairs.add(pair);
    upstream.on('error', () => {});
    for (const s of [client, upstream])
      s.on('close', () => {
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const port = (server.address() as { port: number }).port;
  const destroyAll = () => {
    for (const [a, b] of pairs) {
      a.destroy();
      b?.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    address: `127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    cut: (how: Cut = 'reset') => {
      cut = how;
      if (how === 'reset') return destroyAll();
      for (const [a, b] of pairs) {
        swallow(a);
        if (b) swallow(b);
      }
    },
    heal: () => {
      if (cut === 'blackhole') destroyAll();
      cut = undefined;
    },
    close: async () => {
      cut = 'reset';
      destroyAll();
      await new Promise((ok) => server.close(ok));
    },
  };
};
