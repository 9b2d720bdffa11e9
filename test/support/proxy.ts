// A TCP proxy in front of a test server that records where each connection came from (the
// peer address as the server side sees it) and counts the bytes in both directions: how the
// gateway tests observe the egress address and measure the bandwidth cap on the wire.
import { createConnection, createServer, type Socket } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import { servers, testbed } from './testbed.js';

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

/** Keeps a proxied connection's two sockets in `sockets` until either ends; then both go. */
export function trackPair(sockets: Set<Socket>, client: Socket, upstream: Socket): void {
  sockets.add(client).add(upstream);
  const end = () => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  client.on('error', end).on('close', end);
  upstream.on('error', end).on('close', end);
}

export async function recordingProxy(listenHost: string, target: { host: string; port: number }): Promise<RecordingProxy> {
  const sockets = new Set<Socket>();
  const state = { up: 0, down: 0 };
  const peers: string[] = [];
  const server = createServer((client) => {
    peers.push(client.remoteAddress ?? '?');
    const upstream = createConnection(target);
    trackPair(sockets, client, upstream);
    client.on('data', (d: Buffer) => (state.up += d.length));
    upstream.on('data', (d: Buffer) => (state.down += d.length));
    client.pipe(upstream);
    upstream.pipe(client);
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

/**
 * For a test file: a recording proxy in front of the test bed's S3 server, started before the
 * file's tests and closed after them. Call at the top level; use the returned getter in tests.
 */
export function s3ProxyForFile(): () => RecordingProxy {
  let proxy: RecordingProxy | undefined;
  beforeAll(async () => {
    await servers('s3');
    const s3 = new URL(testbed().s3.endpoint);
    proxy = await recordingProxy('127.0.0.1', { host: s3.hostname, port: Number(s3.port) });
  });
  afterAll(async () => {
    await proxy?.close();
  });
  return () => {
    if (!proxy) throw new Error('the S3 proxy is not started (s3ProxyForFile must be called at the top level of the file)');
    return proxy;
  };
}
