// The run's shared servers (one MariaDB, one Redis, one S3), started on demand.
//
// They live in vitest's main process (global-setup.ts creates one SharedServers and serves it
// on a loopback HTTP port with a random token): a test file asks for the servers it needs
// (`await servers('mariadb', 's3')`, testbed.ts), the first request for a server starts it,
// every later request in the same run gets the same server, and teardown stops whatever was
// started. Because the main process starts them, the existing safety net covers them: each
// server's guard (ports.ts) is tied to the main process and kills the server when the runner
// dies, however it dies. A server that failed to start stays failed for the run: every file
// that asks for it fails with the same message (never a skip, never a 60 s retry per file).

import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { startMariaDB } from './mariadb.js';
import { startRedis } from './redis.js';
import { startS3 } from './s3.js';
import type { MariaDBInfo, RedisInfo, S3Info, ServerName, TestbedInfo } from './types.js';

export interface Started<N extends ServerName> {
  info: TestbedInfo[N];
  ms: number;
  stop(): Promise<void>;
}

async function startMariaDBInfo(): Promise<Started<'mariadb'>> {
  const t0 = performance.now();
  const m = await startMariaDB();
  const info: MariaDBInfo = {
    host: m.host,
    port: m.port,
    socket: m.socket,
    datadir: m.datadir,
    user: m.user,
    password: m.password,
    version: m.version,
  };
  return { info, ms: Math.round(performance.now() - t0), stop: () => m.stop() };
}

async function startRedisInfo(): Promise<Started<'redis'>> {
  const t0 = performance.now();
  const r = await startRedis();
  const info: RedisInfo = {
    host: r.host,
    port: r.port,
    ...(r.password !== undefined ? { password: r.password } : {}),
    version: r.version,
  };
  return { info, ms: Math.round(performance.now() - t0), stop: () => r.stop() };
}

async function startS3Info(): Promise<Started<'s3'>> {
  const t0 = performance.now();
  const s = await startS3();
  const info: S3Info = { endpoint: s.endpoint, tlsEndpoint: s.tlsEndpoint, caFile: s.caFile, region: s.region, accessKey: s.accessKey, secretKey: s.secretKey };
  return { info, ms: Math.round(performance.now() - t0), stop: () => s.stop() };
}

export type Starters = { [N in ServerName]: () => Promise<Started<N>> };

const STARTERS: Starters = {
  mariadb: startMariaDBInfo,
  redis: startRedisInfo,
  s3: startS3Info,
};

const LABEL: Record<ServerName, string> = { mariadb: 'MariaDB', redis: 'Redis', s3: 'S3 (Ceph RGW)' };

export function isServerName(s: string): s is ServerName {
  return Object.hasOwn(STARTERS, s);
}

/** Starts each server at most once; stopAll() stops every one that started. */
export class SharedServers {
  private readonly starts = new Map<ServerName, Promise<Started<ServerName>>>();
  private closed = false;

  /** `starters` replaces how servers start (the tests of this class). */
  constructor(private readonly starters: Starters = STARTERS) {}

  /** The server's connection info, starting it on the first call. Rejects if it cannot start. */
  async ensure<N extends ServerName>(name: N): Promise<{ info: TestbedInfo[N]; ms: number }> {
    if (this.closed) throw new Error(`test bed: ${LABEL[name]} requested after teardown`);
    let p = this.starts.get(name);
    if (!p) {
      p = (this.starters[name] as () => Promise<Started<ServerName>>)();
      p.catch(() => undefined); // a failure is reported to every caller, not as unhandled
      this.starts.set(name, p);
    }
    try {
      const s = (await p) as Started<N>;
      return { info: s.info, ms: s.ms };
    } catch (err) {
      throw new Error(`test bed: ${LABEL[name]} could not start: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  /** Names of the servers that were asked for (started, starting or failed). */
  requested(): ServerName[] {
    return [...this.starts.keys()];
  }

  /** Stop every server that started (waits for starts in flight). Throws if a stop failed. */
  async stopAll(): Promise<void> {
    this.closed = true;
    const errors: unknown[] = [];
    await Promise.all(
      [...this.starts.values()].map(async (p) => {
        const s = await p.catch(() => undefined);
        if (s) await s.stop().catch((err: unknown) => void errors.push(err));
      }),
    );
    this.starts.clear();
    if (errors.length > 0) throw new AggregateError(errors, 'test bed: stopping servers failed');
  }
}

/** What a start request answers (JSON). */
export type StartReply<N extends ServerName = ServerName> = { ok: true; info: TestbedInfo[N]; ms: number } | { ok: false; error: string };

/**
 * Serve `servers` on 127.0.0.1 (a free port): `GET /<token>/start/<name>` starts (or reuses)
 * the server and answers a StartReply. Returns the base URL (with the token) to hand to
 * test files, and close().
 */
export async function serveSharedServers(servers: SharedServers): Promise<{ url: string; close(): Promise<void> }> {
  const token = randomBytes(16).toString('hex');
  const http: Server = createServer((req, res) => {
    const reply = (status: number, body: StartReply): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const m = /^\/([0-9a-f]+)\/start\/([a-z0-9]+)$/.exec(req.url ?? '');
    if (req.method !== 'GET' || !m || m[1] !== token) return reply(404, { ok: false, error: 'test bed: no such request' });
    const name = m[2] ?? '';
    if (!isServerName(name)) return reply(400, { ok: false, error: `test bed: no server named ${name}` });
    servers.ensure(name).then(
      ({ info, ms }) => reply(200, { ok: true, info, ms }),
      (err: unknown) => reply(500, { ok: false, error: (err as Error).message }),
    );
  });
  // A start can take a minute under load: no server-side timeouts on the response.
  http.requestTimeout = 0;
  http.headersTimeout = 0;
  http.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  http.unref();
  const addr = http.address();
  if (addr === null || typeof addr !== 'object') throw new Error('test bed: the server coordinator has no address');
  return {
    url: `http://127.0.0.1:${addr.port}/${token}`,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
