// Connecting to a Redis server with ioredis for dbs: one connection, no endless retries, no
// offline queue, a clear DbsError for the usual failures (unreachable, wrong password, ACL),
// and the password kept out of every message.
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { serverHost } from '../server-host.js';
import { AbstractConnector, Redis } from 'ioredis';
import { DbsError } from '../../errors.js';
import { redactText } from '../../secret.js';
import type { Egress, Endpoint } from '../types.js';

export const CONNECT_TIMEOUT_MS = 5_000;

export type RedisRole = 'source' | 'target';

/** The ACL user of an endpoint: the URL's user (redis://backup@host), else ?user=. */
export function redisUser(ep: Endpoint): string | undefined {
  const u = ep.user ?? ep.params['user'];
  return u ? u : undefined;
}

/** host:port (or the socket path) for messages. */
export function redisAddress(ep: Endpoint): string {
  const socket = ep.params['socket'];
  if (socket) return socket;
  const host = ep.host ?? '127.0.0.1';
  return `${host.includes(':') ? `[${host}]` : host}:${ep.port ?? 6379}`;
}

const PASSWORD_HINT = 'pass the password with --password-env VAR or --password-file FILE (and the ACL user in the URL: redis://USER@host:port)';

/**
 * Turns an ioredis / Redis error into a DbsError with a stable code. Never shows a password:
 * the original error is not kept as `cause` (ioredis attaches the command and its arguments,
 * AUTH's password among them, to reply errors).
 */
export function classifyRedisError(err: unknown, ep: Endpoint, role: RedisRole, replyCode: 'FAILED' | 'BACKUP_FAILED' | 'RESTORE_FAILED' = 'FAILED'): DbsError {
  if (err instanceof DbsError) return err;
  const e = err as { message?: string; code?: string } | undefined;
  const raw = redactText(String(e?.message ?? err), [ep.password]);
  const msg = raw.split('\n')[0];
  const where = `Redis ${role} ${redisAddress(ep)}`;
  const code = e?.code;
  if (/without any password configured|no password is set/i.test(msg)) {
    return new DbsError('SOURCE_AUTH', `${where} has no password, but one was given: ${msg}`, {
      hint: 'drop --password-env / --password-file (or set a password on the server: requirepass or an ACL user)',
    });
  }
  if (/^(WRONGPASS|NOAUTH)\b/.test(msg) || /invalid (username-)?password/i.test(msg) || /^ERR AUTH\b/.test(msg)) {
    const noPassword = ep.password === undefined || ep.password.isEmpty;
    return new DbsError('SOURCE_AUTH', `${where} refused the login${redisUser(ep) ? ` of user ${redisUser(ep)}` : ''}: ${msg}`, {
      hint: noPassword ? `the server requires a password: ${PASSWORD_HINT}` : `check the password (and user): ${PASSWORD_HINT}`,
    });
  }
  if (/^NOPERM\b/.test(msg)) {
    return new DbsError('PERMISSION_DENIED', `${where}: ${msg}`, {
      hint:
        role === 'source'
          ? 'the ACL user needs: +ping +info +select +scan +dump +pexpiretime +pttl +config|get (and +sync +replconf for snapshots)'
          : 'the ACL user needs: +ping +info +select +restore +exists +dbsize (+flushdb for --flush)',
    });
  }
  if (/^LOADING\b/.test(msg)) {
    return new DbsError('SOURCE_UNREACHABLE', `${where} is loading its dataset: ${msg}`, { hint: 'try again when the server has finished loading' });
  }
  if (
    code === 'ECONNREFUSED' ||
    code === 'ETIMEDOUT' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENETUNREACH' ||
    code === 'ENOTFOUND' ||
    code === 'EAI_AGAIN' ||
    code === 'ECONNRESET' ||
    code === 'ENOENT' ||
    /ETIMEDOUT|ECONNREFUSED/.test(msg)
  ) {
    return new DbsError('SOURCE_UNREACHABLE', `${where} is unreachable: ${msg}`, {
      hint: `check that Redis runs and listens on ${redisAddress(ep)} and that no firewall is in the way`,
    });
  }
  if (/Unknown RESP type|Protocol error/i.test(msg)) {
    return new DbsError('SOURCE_UNREACHABLE', `${where} does not speak the Redis protocol: ${msg}`, {
      hint: `check the host and port: is ${redisAddress(ep)} a Redis server?`,
    });
  }
  if ((err as { name?: string } | undefined)?.name === 'ReplyError') {
    // The server answered, with an error no other rule covers.
    return new DbsError(replyCode, `${where} answered: ${msg}`, { hint: 'see the server\'s log' });
  }
  return new DbsError('SOURCE_UNREACHABLE', `${where}: ${msg}`, { hint: `check that Redis runs on ${redisAddress(ep)}` });
}

export interface RedisConnection {
  client: Redis;
  /** The last error ioredis emitted (connection-level), if any. */
  lastError(): unknown;
  close(): void;
}

/**
 * Connects and logs in. RESP2 and AUTH sent by us (not by ioredis) so the login error is ours
 * to classify and ioredis never prints warnings. Rejects with SOURCE_UNREACHABLE,
 * SOURCE_AUTH, PERMISSION_DENIED or INTERRUPTED.
 */
export async function connectRedis(ep: Endpoint, opts: { role: RedisRole; signal?: AbortSignal; name?: string; egress?: Egress }): Promise<RedisConnection> {
  opts.signal?.throwIfAborted();
  const socket = ep.params['socket'];
  const tls = ep.params['tls'] === '1' || ep.params['tls'] === 'true';
  const client = new Redis({
    ...(socket ? { path: socket } : { host: serverHost(ep), port: ep.port ?? 6379 }),
    ...(tls ? { tls: {} } : {}),
    // ioredis's own connector passes no local address to net.connect: ours does (the gateway).
    ...(opts.egress && !socket ? { Connector: boundConnector(opts.egress.localAddress, tls) } : {}),
    protocol: 2,
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    reconnectOnError: null,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    autoResendUnfulfilledCommands: false,
    disableClientInfo: true,
  });
  let last: unknown;
  client.on('error', (e: unknown) => {
    last = e;
  });
  const onAbort = (): void => client.disconnect();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const conn: RedisConnection = {
    client,
    lastError: () => last,
    close: () => {
      opts.signal?.removeEventListener('abort', onAbort);
      client.disconnect();
    },
  };
  try {
    try {
      await client.connect();
    } catch (e) {
      throw last ?? e;
    }
    const user = redisUser(ep);
    if (ep.password !== undefined && !ep.password.isEmpty) {
      // The only place the password leaves its Secret.
      if (user) await client.call('AUTH', user, ep.password.reveal());
      else await client.call('AUTH', ep.password.reveal());
    } else if (user) {
      // An ACL user without a password (nopass).
      await client.call('AUTH', user, '');
    }
    await client.call('PING');
    await client.call('CLIENT', 'SETNAME', opts.name ?? `dbs-${opts.role}`).catch(() => undefined);
    return conn;
  } catch (e) {
    conn.close();
    if (opts.signal?.aborted) throw new DbsError('INTERRUPTED', `connecting to Redis ${opts.role} ${redisAddress(ep)} was interrupted`);
    throw classifyRedisError(e, ep, opts.role);
  }
}

/** redis_version (or valkey_version) and the server flavor from INFO server. */
export function parseServerInfo(info: string): { version: string; flavor: string; fields: Record<string, string> } {
  const fields: Record<string, string> = {};
  for (const line of info.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) fields[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  const flavor = fields['server_name'] === 'valkey' || fields['valkey_version'] ? 'valkey' : 'redis';
  const version = (flavor === 'valkey' ? fields['valkey_version'] : undefined) ?? fields['redis_version'] ?? '';
  return { version, flavor, fields };
}

/** INFO keyspace -> { "0": 1234, "3": 5 } (databases that hold keys). */
export function parseKeyspace(info: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of info.split(/\r?\n/)) {
    const m = /^db(\d+):keys=(\d+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** CONFIG GET databases, or undefined when CONFIG is not allowed (ACL, renamed command). */
export async function databaseCount(client: Redis): Promise<number | undefined> {
  try {
    const r = (await client.call('CONFIG', 'GET', 'databases')) as unknown;
    if (Array.isArray(r) && r.length >= 2) {
      const n = Number(r[1]);
      return Number.isInteger(n) && n > 0 ? n : undefined;
    }
    return undefined;
  } catch {
    return undefined;
  }
}

/**
 * An ioredis connector (the RedisOptions.Connector hook) whose TCP connection leaves from
 * `localAddress`: ioredis's StandaloneConnector, plus the bind. A unix socket never gets one.
 */
function boundConnector(localAddress: string, tls: boolean) {
  return class BoundConnector extends AbstractConnector {
    readonly #o: { host?: string; port?: number; family?: number; tls?: ConnectionOptions };
    constructor(options: unknown) {
      const o = options as { host?: string; port?: number; family?: number; tls?: ConnectionOptions; disconnectTimeout?: number };
      super(o.disconnectTimeout ?? 2000);
      this.#o = o;
    }
    connect(): ReturnType<AbstractConnector['connect']> {
      this.connecting = true;
      const o = this.#o;
      const where = { host: o.host ?? '127.0.0.1', port: o.port ?? 6379, ...(o.family ? { family: o.family } : {}), localAddress };
      return new Promise((resolve, reject) => {
        // As ioredis does: the stream is created on the next tick, after connect() returned.
        process.nextTick(() => {
          if (!this.connecting) return reject(new Error('Connection is closed.'));
          try {
            this.stream = tls ? tlsConnect({ ...where, ...(o.tls ?? {}) }) : netConnect(where);
          } catch (e) {
            return reject(e as Error);
          }
          this.stream.once('error', (err: Error) => {
            this.firstError = err;
          });
          resolve(this.stream);
        });
      });
    }
  };
}
