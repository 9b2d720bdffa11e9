// A TCP proxy in front of a test server that records where each connection came from (the
// peer address as the server side sees it) and counts the bytes in both directions: how the
// gateway tests observe the egress address and measure the bandwidth cap on the wire.
import { createConnection, createServer, type Socket } from 'node:net';

export interface RecordingProxy {
  /** http://HOST:PORT of the proxy (IPv6 hosts in brackets). */
  endpoint: string;
  /** remoteAddress of every accepted connection, in order. */
  peers: string[];
  /** Bytes client -> server and server -> client so far. */
  readonly upBytes: number;
  readonly downBytes: number;
  close(): Promise<void>;
}

export async function recordingProxy(listenHost: string, target: { host: string; port: number }): Promise<RecordingProxy> {
  const sockets = new Set<Socket>();
  const state = { up: 0, down: 0 };
  const peers: string[] = [];
  const server = createServer((client) => {
    peers.push(client.remoteAddress ?? '?');
    const upstream = createConnection(target);
    sockets.add(client).add(upstream);
    client.on('data', (d: Buffer) => (state.up += d.length));
    upstream.on('data', (d: Buffer) => (state.down += d.length));
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen({ host: listenHost, port: 0 }, () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`,
    peers,
    get upBytes() {
      return state.up;
    },
    get downBytes() {
      return state.down;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
