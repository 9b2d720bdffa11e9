// A disposable MariaDB server for tests: mariadb-install-db into a temp dir, then mariadbd
// on a free loopback port. Everything runs with --no-defaults so /etc/mysql stays out, and
// the system MariaDB on 3306 is never touched.
// Measured on the 2-core dev VM (MariaDB 10.11): start ~0.7-0.8 s alone (install-db ~0.6 s,
// mariadbd to first query ~0.15 s), ~1.0-1.2 s in parallel with Redis and Ceph; restart()
// ~0.15-0.2 s; stop() ~0.05 s.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import {
  describeExit,
  freePort,
  makeGuardedDir,
  removeGuardedDir,
  retryOnPortClash,
  runTool,
  spawnDaemon,
  tailFile,
  waitFor,
  type DaemonProcess,
} from './ports.js';

export interface MariaDBServer {
  host: string;
  port: number;
  socket: string;
  datadir: string;
  baseDir: string;
  user: string;
  password: string;
  pid: number;
  version: string;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export interface StartMariaDBOptions {
  /** Enable the binary log (server_id=1, log-bin=mysql-bin). Default true. */
  logBin?: boolean;
  /** Give root@localhost/127.0.0.1/::1 this password (default: empty password). */
  rootPassword?: string;
}

const START_TIMEOUT_MS = 60_000;

export async function startMariaDB(opts: StartMariaDBOptions = {}): Promise<MariaDBServer> {
  return retryOnPortClash(() => startMariaDBOnce(opts));
}

async function startMariaDBOnce(opts: StartMariaDBOptions = {}): Promise<MariaDBServer> {
  const logBin = opts.logBin ?? true;
  const guard = await makeGuardedDir('mariadb');
  const baseDir = guard.dir;
  const datadir = join(baseDir, 'data');
  const tmp = join(baseDir, 'tmp');
  const socket = join(baseDir, 'mysqld.sock');
  const pidFile = join(baseDir, 'mysqld.pid');
  const errorLog = join(baseDir, 'error.log');
  const outputFile = join(baseDir, 'mariadbd.out');
  let proc: DaemonProcess | undefined;
  let stopped = false;

  const stopServer = async (): Promise<void> => {
    if (proc) await proc.stop({ graceMs: 30_000 });
    proc = undefined;
  };

  try {
    await mkdir(datadir);
    await mkdir(tmp);
    const port = await freePort();

    const install = await runTool(
      'mariadb-install-db',
      [
        '--no-defaults',
        '--user=root',
        `--datadir=${datadir}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--skip-name-resolve',
        // Same InnoDB settings as the server, so the first start does not rebuild anything.
        '--innodb-log-file-size=48M',
      ],
      { timeoutMs: START_TIMEOUT_MS, cwd: baseDir, guard },
    );
    if (install.exitCode !== 0) {
      const why = install.timedOut ? `timed out after ${START_TIMEOUT_MS} ms` : `failed (${install.exitCode ?? install.signal})`;
      throw new Error(`mariadb-install-db ${why}:\n${tail(install.all)}`);
    }

    const args = [
      '--no-defaults',
      '--user=root',
      `--datadir=${datadir}`,
      `--socket=${socket}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--pid-file=${pidFile}`,
      `--log-error=${errorLog}`,
      `--tmpdir=${tmp}`,
      '--skip-name-resolve',
      '--innodb-log-file-size=48M',
      ...(logBin ? ['--server-id=1', '--log-bin=mysql-bin'] : []),
    ];

    const server: MariaDBServer = {
      host: '127.0.0.1',
      port,
      socket,
      datadir,
      baseDir,
      user: 'root',
      password: '',
      pid: 0,
      version: '',
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await stopServer();
        await removeGuardedDir(guard);
      },
      restart: async () => {
        if (stopped) throw new Error('MariaDB server was stopped; start a new one');
        await stopServer();
        await launch();
      },
    };

    const launch = async (): Promise<void> => {
      const p = spawnDaemon('mariadbd', args, { outputFile, guard });
      proc = p;
      server.pid = p.pid;
      try {
        server.version = await waitFor(
          async () => {
            const conn = await mysql.createConnection({
              host: '127.0.0.1',
              port,
              user: 'root',
              password: server.password,
              connectTimeout: 2_000,
            });
            try {
              const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v');
              return String(rows[0]?.['v'] ?? '');
            } finally {
              await conn.end().catch(() => conn.destroy());
            }
          },
          {
            what: `MariaDB on 127.0.0.1:${port}`,
            timeoutMs: START_TIMEOUT_MS,
            intervalMs: 50,
            abortIf: () => {
              if (p.exited) throw new Error(`mariadbd ${describeExit(p.exited)}`);
            },
          },
        );
      } catch (err) {
        await stopServer().catch(() => undefined);
        throw new Error(
          `MariaDB did not start: ${(err as Error).message}\n--- ${errorLog} (tail) ---\n${await tailFile(errorLog)}` +
            `\n--- ${outputFile} (tail) ---\n${await tailFile(outputFile, 10)}`,
        );
      }
    };

    await launch();

    if (opts.rootPassword !== undefined) {
      const conn = await mysql.createConnection({ socketPath: socket, user: 'root', password: '' });
      try {
        // mariadb-install-db also makes root@<hostname>, which --skip-name-resolve ignores
        // (ALTER USER on it fails with ER_CANNOT_USER): only the IP/localhost accounts.
        for (const host of ['localhost', '127.0.0.1', '::1']) {
          await conn.query('ALTER USER IF EXISTS ?@? IDENTIFIED BY ?', ['root', host, opts.rootPassword]);
        }
      } finally {
        await conn.end();
      }
      server.password = opts.rootPassword;
    }

    return server;
  } catch (err) {
    await stopServer().catch(() => undefined);
    await removeGuardedDir(guard).catch(() => undefined);
    throw err;
  }
}

function tail(text: string | undefined, lines = 30): string {
  return (text ?? '').split('\n').slice(-lines).join('\n');
}
