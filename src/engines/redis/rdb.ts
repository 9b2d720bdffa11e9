// Redis snapshots with the stock tools: `redis-cli --rdb FILE` (the server streams an RDB as
// it would to a replica) and `redis-check-rdb FILE` (the RDB parses to its end and its
// checksum matches). The password reaches redis-cli through REDISCLI_AUTH, never argv.
import { stat } from 'node:fs/promises';
import { childEnv, execaChild, versionOutput } from '../../pipeline/child.js';
import { DbsError } from '../../errors.js';
import { findOnPath } from '../../which.js';
import { redactText } from '../../secret.js';
import type { Endpoint, ToolInfo } from '../types.js';
import { redisAddress, redisUser } from './conn.js';

export const REDIS_CLI = 'redis-cli';
export const REDIS_CHECK_RDB = 'redis-check-rdb';

const PURPOSE: Record<string, string> = {
  [REDIS_CLI]: 'redis snapshot backups (--rdb) and loading logical dumps by hand (--pipe)',
  [REDIS_CHECK_RDB]: 'checks every redis snapshot (RDB) before it is stored and after it is restored',
};

/** "redis-cli 7.0.15" / "redis-check-rdb 7.0.15" / "Redis server v=7.0.15 ..." -> "7.0.15". */
export function parseRedisToolVersion(out: string): string | undefined {
  return /(?:v=|\s)(\d+\.\d+(?:\.\d+)?)/.exec(` ${out}`)?.[1];
}

/** The environment of a redis tool: the allowed variables (childEnv; no REDISCLI_* of ours), plus the password. */
export function redisToolEnv(ep?: Endpoint): Record<string, string> {
  return childEnv(ep?.password !== undefined && !ep.password.isEmpty ? { REDISCLI_AUTH: ep.password.reveal() } : {});
}

export async function describeRedisTool(name: string): Promise<ToolInfo> {
  const path = findOnPath(name);
  const purpose = PURPOSE[name] ?? 'redis';
  if (!path) return { name, found: false, purpose };
  const version = parseRedisToolVersion(await versionOutput(path, redisToolEnv()));
  return { name, path, found: true, ...(version ? { version } : {}), purpose };
}

async function requireTool(name: string): Promise<string> {
  const path = findOnPath(name);
  if (!path) {
    throw new DbsError('TOOL_MISSING', `${name} is not on PATH`, {
      hint: 'install the Redis tools (Debian/Ubuntu: apt-get install redis-tools), then check with: dbs doctor',
    });
  }
  return path;
}

/** redis-cli connection arguments (no secret among them). */
export function redisCliArgs(ep: Endpoint): string[] {
  const args: string[] = [];
  const socket = ep.params['socket'];
  if (socket) args.push('-s', socket);
  else args.push('-h', ep.host ?? '127.0.0.1', '-p', String(ep.port ?? 6379));
  const user = redisUser(ep);
  if (user) args.push('--user', user);
  if (ep.params['tls'] === '1' || ep.params['tls'] === 'true') args.push('--tls');
  return args;
}

function tail(lines: string[], n: number): string[] {
  return lines.filter((l) => l.trim() !== '').slice(-n);
}

export interface RdbSnapshot {
  bytes: number;
  /** redis-cli's output lines. */
  lines: string[];
  toolVersion?: string;
}

/**
 * `redis-cli --rdb FILE`: fails (BACKUP_FAILED, SOURCE_AUTH, SOURCE_UNREACHABLE,
 * PERMISSION_DENIED) unless redis-cli exits 0 AND prints its success line AND the file is not
 * empty.
 */
export async function fetchRdb(ep: Endpoint, file: string, ctx: { signal: AbortSignal; log(line: string): void }): Promise<RdbSnapshot> {
  const cli = await requireTool(REDIS_CLI);
  const r = await execaChild(cli, [...redisCliArgs(ep), '--rdb', file], {
    reject: false,
    all: true,
    stdin: 'ignore',
    env: redisToolEnv(ep),
    extendEnv: false,
    cancelSignal: ctx.signal,
    forceKillAfterDelay: 5_000,
  });
  const lines = redactText(String(r.all ?? ''), [ep.password]).split(/\r?\n/);
  for (const l of tail(lines, 50)) ctx.log(l);
  if (ctx.signal.aborted || r.isCanceled) throw new DbsError('INTERRUPTED', `the snapshot of Redis ${redisAddress(ep)} was interrupted`);
  const text = lines.join('\n');
  const succeeded = r.exitCode === 0 && /Transfer finished with success/.test(text);
  if (!succeeded) {
    const last = tail(lines, 5).join(' | ') || (r.failed ? String(r.shortMessage) : 'no output');
    const where = `Redis source ${redisAddress(ep)}`;
    if (/without any password configured|no password is set/i.test(text)) {
      throw new DbsError('SOURCE_AUTH', `${where} has no password, but one was given: ${last}`, {
        hint: 'drop --password-env / --password-file (or set a password on the server: requirepass or an ACL user)',
      });
    }
    if (/NOAUTH|WRONGPASS|AUTH failed|invalid (username-)?password/i.test(text)) {
      throw new DbsError('SOURCE_AUTH', `${where} refused the login of redis-cli: ${last}`, {
        hint: 'pass the password with --password-env VAR or --password-file FILE (and the ACL user in the URL: redis://USER@host:port)',
      });
    }
    if (/Could not connect|Connection refused|Connection timed out/i.test(text)) {
      throw new DbsError('SOURCE_UNREACHABLE', `${where} is unreachable: ${last}`, { hint: `check that Redis runs and listens on ${redisAddress(ep)}` });
    }
    if (/NOPERM/.test(text)) {
      throw new DbsError('PERMISSION_DENIED', `${where}: ${last}`, { hint: 'snapshots need an ACL user allowed to run SYNC and REPLCONF (+sync +replconf)' });
    }
    throw new DbsError('BACKUP_FAILED', `redis-cli --rdb from ${where} failed (exit ${r.exitCode ?? r.signal ?? '?'}): ${last}`, {
      hint: 'see the task log; the server must allow replication connections (SYNC) and have room to fork for the RDB',
    });
  }
  let bytes = 0;
  try {
    bytes = (await stat(file)).size;
  } catch {
    bytes = 0;
  }
  if (bytes === 0) throw new DbsError('BACKUP_FAILED', `redis-cli --rdb from Redis source ${redisAddress(ep)} wrote an empty file`, { hint: 'see the task log' });
  return { bytes, lines };
}

export interface RdbCheck {
  ok: boolean;
  exitCode?: number;
  /** The last lines of redis-check-rdb's output (for messages and logs). */
  tail: string[];
  /** "[info] N keys read" */
  keys?: number;
  expires?: number;
  alreadyExpired?: number;
  /** The AUX field redis-ver: the version of the server that wrote the RDB. */
  redisVersion?: string;
}

/**
 * Runs `redis-check-rdb FILE`. ok only when it exits 0 and prints "RDB looks OK". Never
 * throws for a bad file (only when the tool is missing or was interrupted).
 */
export async function checkRdb(file: string, opts: { signal?: AbortSignal } = {}): Promise<RdbCheck> {
  const tool = await requireTool(REDIS_CHECK_RDB);
  const r = await execaChild(tool, [file], {
    reject: false,
    all: true,
    stdin: 'ignore',
    env: redisToolEnv(),
    extendEnv: false,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    forceKillAfterDelay: 5_000,
  });
  if (opts.signal?.aborted || r.isCanceled) throw new DbsError('INTERRUPTED', `checking ${file} with redis-check-rdb was interrupted`);
  const text = String(r.all ?? '');
  const lines = text.split(/\r?\n/);
  const num = (re: RegExp): number | undefined => {
    const m = re.exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const check: RdbCheck = {
    ok: r.exitCode === 0 && /RDB looks OK/.test(text),
    ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    tail: tail(lines, 8),
  };
  const keys = num(/\[info\] (\d+) keys read/);
  const expires = num(/\[info\] (\d+) expires/);
  const alreadyExpired = num(/\[info\] (\d+) already expired/);
  const redisVersion = /AUX FIELD redis-ver = '([^']*)'/.exec(text)?.[1];
  if (keys !== undefined) check.keys = keys;
  if (expires !== undefined) check.expires = expires;
  if (alreadyExpired !== undefined) check.alreadyExpired = alreadyExpired;
  if (redisVersion) check.redisVersion = redisVersion;
  return check;
}

/** A DbsError (of the given code) that explains a failed check. */
export function rdbCheckError(code: 'BACKUP_FAILED' | 'RESTORE_FAILED', what: string, check: RdbCheck): DbsError {
  const text = check.tail.join(' | ');
  const tooNew = /Can't handle RDB format version|Bad RDB format version|unknown RDB/i.test(text);
  return new DbsError(code, `${what} failed redis-check-rdb (exit ${check.exitCode ?? '?'}): ${text || 'no output'}`, {
    hint: tooNew
      ? 'redis-check-rdb is older than the server that wrote the RDB: install the Redis tools of the server version'
      : code === 'BACKUP_FAILED'
        ? 'the RDB is truncated or damaged; nothing was stored. See the task log and the server log, then run the backup again'
        : 'the stored RDB is damaged; try another backup',
    details: { check: check.tail },
  });
}

/** The RDB format version from the first 9 bytes ("REDIS0010"). */
export function rdbHeaderVersion(head: Buffer): number | undefined {
  const m = /^REDIS(\d{4})$/.exec(head.subarray(0, 9).toString('latin1'));
  return m ? Number(m[1]) : undefined;
}
