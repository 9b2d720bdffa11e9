// Connecting to a MySQL/MariaDB server: with mysql2 for our own queries (probe, sizes, checks
// before a restore), and through a 0600 option file for the stock client tools, so that the
// password never reaches argv. Errors are mapped to DbsError codes and never carry the password.
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { rm, writeFile, chmod } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { DbsError, type ErrorCode } from '../../errors.js';
import { childEnv } from '../../pipeline/child.js';
import { redactText, type Secret } from '../../secret.js';
import type { Egress, Endpoint } from '../types.js';

export type MysqlFlavor = 'mariadb' | 'mysql';

export const DEFAULT_PORT = 3306;
export const CONNECT_TIMEOUT_MS = 5_000;

/** Where and as whom to connect, resolved from an Endpoint (defaults filled in). */
export interface ConnTarget {
  host: string;
  port: number;
  user: string;
  socket?: string;
  password?: Secret;
  /** TCP connections leave from this address (the gateway's; EngineRunContext.egress). */
  localAddress?: string;
}

export function connTarget(ep: Endpoint, egress?: Egress): ConnTarget {
  const socket = ep.params['socket'];
  return {
    host: ep.host || 'localhost',
    port: ep.port ?? DEFAULT_PORT,
    // Same default as the stock clients: the login name of the OS user.
    user: ep.user ?? safeUserName(),
    ...(socket ? { socket } : {}),
    ...(ep.password ? { password: ep.password } : {}),
    ...(egress && !socket ? { localAddress: egress.localAddress } : {}),
  };
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'] ?? 'root';
  }
}

/** `user@host:port` or `user@localhost (socket /path)`: what error messages name. */
export function describeTarget(t: ConnTarget): string {
  return t.socket ? `${t.user}@localhost (socket ${t.socket})` : `${t.user}@${t.host}:${t.port}`;
}

/** `host:port` or the socket path. */
export function describeAddress(t: ConnTarget): string {
  return t.socket ? `socket ${t.socket}` : `${t.host}:${t.port}`;
}

export type Role = 'source' | 'target';

const PASSWORD_HINT =
  'check the user name and the password; give the password with --password-env VAR or --password-file FILE';

const AUTH_CODES = new Set([
  'ER_ACCESS_DENIED_ERROR',
  'ER_ACCESS_DENIED_NO_PASSWORD_ERROR',
  'ER_NOT_SUPPORTED_AUTH_MODE',
  'ER_DBACCESS_DENIED_ERROR',
  'ER_PASSWORD_NO_MATCH',
  'HANDSHAKE_NO_SSL_SUPPORT',
]);
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNRESET',
  'EPIPE',
  'ENOENT', // unix socket path missing
  'EACCES', // unix socket not accessible
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

/** Turns a mysql2 (or socket) error into a DbsError that names the server, never the password. */
export function mapConnError(err: unknown, t: ConnTarget, role: Role): DbsError {
  if (err instanceof DbsError) return err;
  const e = err as { code?: string; errno?: number; message?: string; sqlMessage?: string };
  const code = e?.code ?? '';
  const raw = redactText(String(e?.sqlMessage ?? e?.message ?? err), [t.password]);
  const what = role === 'source' ? 'MySQL source' : 'MySQL target';
  const mk = (c: ErrorCode, message: string, hint?: string): DbsError =>
    new DbsError(c, message, { ...(hint ? { hint } : {}), details: { driverCode: code || undefined } });
  if (AUTH_CODES.has(code)) {
    return mk('SOURCE_AUTH', `access denied for ${describeTarget(t)}: ${raw}`, PASSWORD_HINT);
  }
  if (UNREACHABLE_CODES.has(code)) {
    return mk(
      'SOURCE_UNREACHABLE',
      `cannot reach the ${what} at ${describeAddress(t)} (${code})`,
      t.socket
        ? 'check that the server runs and that the socket path is right'
        : 'check that the server runs, the host and port are right, and no firewall is in the way',
    );
  }
  if (code === 'ER_BAD_DB_ERROR') {
    return mk('SOURCE_NOT_FOUND', `${raw} on ${describeAddress(t)}`, 'check the database name');
  }
  return mk('FAILED', `${what} ${describeAddress(t)}: ${raw}`);
}

/**
 * mysql2 takes a `localAddress` option but does not hand it to net.connect (3.x): a stream
 * factory of our own binds the socket to the gateway address.
 */
function boundStream(host: string, port: number, localAddress: string): () => Socket {
  return () => {
    const s = netConnect({ host, port, localAddress });
    s.setNoDelay(true);
    return s;
  };
}

/** Opens a mysql2 connection (5 s connect timeout); aborting the signal destroys it. */
export async function connect(
  t: ConnTarget,
  role: Role,
  signal?: AbortSignal,
): Promise<{ conn: mysql.Connection; close(): Promise<void> }> {
  if (signal?.aborted) throw new DbsError('INTERRUPTED', `connecting to ${describeAddress(t)} was interrupted`);
  const opts: mysql.ConnectionOptions = {
    user: t.user,
    connectTimeout: CONNECT_TIMEOUT_MS,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    charset: 'utf8mb4_general_ci',
    ...(t.socket ? { socketPath: t.socket } : { host: t.host, port: t.port, ...(t.localAddress ? { stream: boundStream(t.host, t.port, t.localAddress) } : {}) }),
    // The one place the password is handed to a client library.
    ...(t.password ? { password: t.password.reveal() } : {}),
  };
  let conn: mysql.Connection;
  try {
    conn = await raceAbort(mysql.createConnection(opts), signal, t);
  } catch (err) {
    throw mapConnError(err, t, role);
  }
  // Errors after connect (server gone) must not become unhandled 'error' events.
  conn.on('error', () => undefined);
  const onAbort = (): void => conn.destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    conn,
    close: async () => {
      signal?.removeEventListener('abort', onAbort);
      await conn.end().catch(() => conn.destroy());
    },
  };
}

async function raceAbort(
  p: Promise<mysql.Connection>,
  signal: AbortSignal | undefined,
  t: ConnTarget,
): Promise<mysql.Connection> {
  if (!signal) return p;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new DbsError('INTERRUPTED', `connecting to ${describeAddress(t)} was interrupted`));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([p, aborted]);
  } catch (err) {
    // A connection that completes after the abort is closed right away.
    p.then((c) => c.destroy(), () => undefined);
    throw err;
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

/** Runs fn with a connection and closes it afterwards; query errors are mapped too. */
export async function withConnection<T>(
  t: ConnTarget,
  role: Role,
  signal: AbortSignal | undefined,
  fn: (conn: mysql.Connection) => Promise<T>,
): Promise<T> {
  const { conn, close } = await connect(t, role, signal);
  try {
    return await fn(conn);
  } catch (err) {
    if (signal?.aborted) throw new DbsError('INTERRUPTED', `work on ${describeAddress(t)} was interrupted`, { cause: err });
    throw mapConnError(err, t, role);
  } finally {
    await close();
  }
}

/** Convenience: rows of a query as plain objects. */
export async function rows<T = Record<string, unknown>>(
  conn: mysql.Connection,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const [r] = await conn.query<(T & mysql.RowDataPacket)[]>(sql, params);
  return r;
}

export interface ServerInfo {
  version: string;
  flavor: MysqlFlavor;
  versionComment: string;
  logBin: boolean;
}

export async function serverInfo(conn: mysql.Connection): Promise<ServerInfo> {
  const [r] = await rows<{ v: string; c: string | null; b: string | number | null }>(
    conn,
    'SELECT VERSION() AS v, @@version_comment AS c, @@log_bin AS b',
  );
  const version = String(r?.v ?? '');
  const versionComment = String(r?.c ?? '');
  return {
    version,
    versionComment,
    flavor: flavorOf(`${version} ${versionComment}`),
    logBin: String(r?.b ?? '0') === '1',
  };
}

export function flavorOf(versionText: string): MysqlFlavor {
  return /mariadb/i.test(versionText) ? 'mariadb' : 'mysql';
}

// ---------------------------------------------------------------------------------------------
// Option file for the stock tools

/**
 * Quotes a value for a MySQL/MariaDB option file: wrapped in double quotes, with backslash,
 * quotes and control characters escaped (both mysys and MySQL's my_default understand these).
 */
export function quoteOptionValue(v: string): string {
  let out = '';
  for (const ch of v) {
    switch (ch) {
      case '\\':
        out += '\\\\';
        break;
      case '"':
        out += '\\"';
        break;
      case "'":
        out += "\\'";
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\t':
        out += '\\t';
        break;
      case '\b':
        out += '\\b';
        break;
      default:
        out += ch;
    }
  }
  return `"${out}"`;
}

/** The text of a `[client]` option file for the target (holds the password: write it 0600). */
export function optionFileText(t: ConnTarget): string {
  const lines = ['[client]', `user=${quoteOptionValue(t.user)}`];
  // The one place the password is handed to a child process: a 0600 file, never argv.
  if (t.password) lines.push(`password=${quoteOptionValue(t.password.reveal())}`);
  if (t.socket) {
    lines.push(`socket=${quoteOptionValue(t.socket)}`, 'protocol=SOCKET');
  } else {
    // protocol=TCP: "localhost" must not silently mean the default unix socket, as it would
    // for the stock clients (mysql2 always uses TCP for a host).
    lines.push(`host=${quoteOptionValue(t.host)}`, `port=${t.port}`, 'protocol=TCP');
  }
  return lines.join('\n') + '\n';
}

/**
 * Writes the option file into dir with mode 0600 and returns its path and a remover. Pass it
 * as `--defaults-file=PATH`, the FIRST argument: it also keeps /etc/mysql/*.cnf and ~/.my.cnf
 * out of the tools.
 */
export async function writeOptionFile(dir: string, t: ConnTarget): Promise<{ path: string; remove(): Promise<void> }> {
  const path = join(dir, `mysql-client-${randomBytes(6).toString('hex')}.cnf`);
  await writeFile(path, optionFileText(t), { mode: 0o600, flag: 'wx' });
  await chmod(path, 0o600); // whatever the umask was
  return { path, remove: () => rm(path, { force: true }) };
}

/** Quotes an SQL identifier with backticks. */
export function quoteIdent(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

/** The environment for the tools: MYSQL_* variables of ours must not leak into them. */
export function toolEnv(o: { outlivesDbs?: boolean } = {}): Record<string, string> {
  return childEnv({}, { drop: /^(MYSQL|MARIADB)_/i, ...o });
}
