// A disposable Redis server for tests: redis-server on a free loopback port, data dir in a
// temp dir, no persistence (save '' / appendonly no), so restart() comes back empty (or with
// the RDB it was started from, `rdbFile`).
// The system Redis on 6379 is never touched.
// Measured on the 2-core dev VM (Redis 7.0): start ~30 ms alone, 50-85 ms in parallel with
// MariaDB and Ceph; stop() ~100 ms (Redis acts on SIGTERM in its 10 Hz cron).

import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  describeExit,
  freePort,
  makeGuardedDir,
  removeGuardedDir,
  retryOnPortClash,
  spawnDaemon,
  tailFile,
  waitFor,
  type DaemonProcess,
} from './ports.js';

export interface RedisServer {
  host: string;
  port: number;
  dir: string;
  password?: string;
  pid: number;
  version: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export interface StartRedisOptions {
  /** Passed as --requirepass (test server only; dbs itself never puts secrets in argv). */
  password?: string;
  /** Load this RDB file at start (it is copied into the server's dir as dump.rdb). */
  rdbFile?: string;
}

const START_TIMEOUT_MS = 30_000;

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  return retryOnPortClash(() => startRedisOnce(opts));
}

async function startRedisOnce(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const guard = await makeGuardedDir('redis');
  const dir = guard.dir;
  const pidFile = join(dir, 'redis.pid');
  const logFile = join(dir, 'redis.log');
  const outputFile = join(dir, 'redis-server.out');
  let proc: DaemonProcess | undefined;
  let stopped = false;
  const stopServer = async (): Promise<void> => {
    if (proc) await proc.stop();
    proc = undefined;
  };
  try {
    if (opts.rdbFile !== undefined) await copyFile(opts.rdbFile, join(dir, 'dump.rdb'));
    const port = await freePort();
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--pidfile', pidFile,
      '--logfile', logFile,
      // redis-cli --rdb otherwise waits 5 s before the server streams the RDB.
      '--repl-diskless-sync-delay', '0',
      '--enable-debug-command', 'local',
      ...(opts.password !== undefined ? ['--requirepass', opts.password] : []),
    ];

    const server: RedisServer = {
      host: '127.0.0.1',
      port,
      dir,
      ...(opts.password !== undefined ? { password: opts.password } : {}),
      pid: 0,
      version: '',
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await stopServer();
        await removeGuardedDir(guard);
      },
      // No persistence: the server comes back empty.
      restart: async () => {
        if (stopped) throw new Error('Redis server was stopped; start a new one');
        await stopServer();
        await launch();
      },
    };

    const launch = async (): Promise<void> => {
      const p = spawnDaemon('redis-server', args, { outputFile, cwd: dir, guard });
      proc = p;
      server.pid = p.pid;
      try {
        server.version = await waitFor(
          async () => {
            const client = new Redis({
              host: '127.0.0.1',
              port,
              ...(opts.password !== undefined ? { password: opts.password } : {}),
              lazyConnect: true,
              connectTimeout: 1_000,
              commandTimeout: 1_000,
              maxRetriesPerRequest: 0,
              retryStrategy: () => null,
              enableOfflineQueue: false,
            });
            client.on('error', () => undefined);
            try {
              await client.connect();
              const info = await client.info('server');
              const m = /^redis_version:(\S+)/m.exec(info);
              return m?.[1] ?? 'unknown';
            } finally {
              client.disconnect();
            }
          },
          {
            what: `Redis on 127.0.0.1:${port}`,
            timeoutMs: START_TIMEOUT_MS,
            intervalMs: 20,
            abortIf: () => {
              if (p.exited) throw new Error(`redis-server ${describeExit(p.exited)}`);
            },
          },
        );
      } catch (err) {
        await stopServer().catch(() => undefined);
        throw new Error(
          `Redis did not start: ${(err as Error).message}\n--- ${logFile} (tail) ---\n${await tailFile(logFile)}` +
            `\n--- ${outputFile} (tail) ---\n${await tailFile(outputFile, 10)}`,
        );
      }
    };

    await launch();
    return server;
  } catch (err) {
    await stopServer().catch(() => undefined);
    await removeGuardedDir(guard).catch(() => undefined);
    throw err;
  }
}
