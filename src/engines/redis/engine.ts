// The Redis engine.
//
// logical:  SCAN + DUMP + PEXPIRETIME over one ioredis connection -> a RESP stream of
//           `SELECT db` and `RESTORE key abs-ms payload REPLACE ABSTTL` commands (artifact
//           dump.resp). Stock `redis-cli --pipe` loads it. Not point-in-time (SCAN).
// snapshot: `redis-cli --rdb FILE` into the task's tmp dir, `redis-check-rdb FILE`, then the
//           file is stored (artifact dump.rdb). Restored as a file for a target data dir.
//
// Restore of a logical dump: the RESP stream is parsed incrementally and sent pipelined in
// batches (at most two in flight), each database into the same index, or into the target
// URL's database when the backup holds exactly one. Without --replace the restore refuses
// BEFORE writing when a key of the backup already exists in the target (a read-only pass over
// the dump that runs only when a target database is not empty); --flush empties each target
// database (FLUSHDB) just before its keys are written.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { DbsError, describeError } from '../../errors.js';
import { redactText } from '../../secret.js';
import { findOnPath } from '../../which.js';
import type { ArtifactReader, BackupType, Egress, Endpoint, Engine, EngineRunContext, ProbeInfo, RestoreOutcome, SourceKind, ToolInfo } from '../types.js';
import type { RedisBackupOutcome, RedisBackupRequest, RedisFacts, RedisRestoreOptions, RedisRestoreRequest, RedisSelection } from './types.js';
import {
  classifyRedisError,
  connectRedis,
  databaseCount,
  parseKeyspace,
  parseServerInfo,
  redisAddress,
  type RedisConnection,
} from './conn.js';
import { argIs, encodeCommand, printableKey, pushRestoreCommand, RespCommandParser, RespFormatError } from './resp.js';
import {
  checkRdb,
  describeRedisTool,
  fetchRdb,
  rdbCheckError,
  rdbHeaderVersion,
  REDIS_CHECK_RDB,
  REDIS_CLI,
} from './rdb.js';

export { checkRdb, type RdbCheck } from './rdb.js';
import { dumpDatabases, dumpKeys, rollbackRestore, saveFlushed, saveReplaced, type Undo } from './undo.js';
export { encodeCommand, RespCommandParser } from './resp.js';

/** SCAN COUNT, and so the keys per DUMP pipeline. */
export const SCAN_COUNT = 1000;
/** A restore batch is sent when it holds this many commands... */
export const RESTORE_BATCH_COMMANDS = 1000;
/** ...or this many bytes of arguments. */
export const RESTORE_BATCH_BYTES = 4 * 1024 * 1024;
/** Restore batches in flight at once (bounded memory, and the server always has work). */
export const RESTORE_IN_FLIGHT = 2;

const CONSISTENCY = 'scan (not point-in-time)';

// ---------------------------------------------------------------------------------------------
// RedisSelection

/** Sorted numerically, duplicates dropped. */
function sortDbs(dbs: Iterable<string>): string[] {
  return [...new Set(dbs)].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
}

/**
 * The databases a backup covers: the selection's, else the one the URL names
 * (redis://h:p/3), else every database that holds keys (INFO keyspace).
 */
export function selectedDatabases(source: Endpoint, selection: RedisSelection, keyspace: Record<string, number>): string[] {
  if (selection.databases.length > 0) return sortDbs(selection.databases.map((d) => d.trim()));
  if (source.path !== undefined && source.path !== '') return [source.path];
  return sortDbs(Object.keys(keyspace));
}

function isDbIndex(db: string): boolean {
  return /^\d{1,9}$/.test(db);
}

/** Problems with a list of database indexes (not a number; beyond CONFIG GET databases). */
export function databaseProblems(dbs: string[], count: number | undefined): string[] {
  const problems: string[] = [];
  for (const db of dbs) {
    if (!isDbIndex(db)) problems.push(`database ${JSON.stringify(db)} is not a Redis database number (0, 1, 2, ...)`);
    else if (count !== undefined && Number(db) >= count) problems.push(`database ${db} does not exist (the server has ${count})`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Logical dump

export interface DumpStats {
  /** Keys written per database. */
  keys: Record<string, number>;
  total: number;
  /** Highest RDB format version seen in a DUMP payload. */
  rdbVersion: number;
  bytes: number;
}

export interface DumpOptions {
  databases: string[];
  match?: string;
  /** PEXPIRETIME is available (Redis >= 7): absolute expiry from the server's own clock. */
  absoluteTtl: boolean;
  signal?: AbortSignal;
  stats: DumpStats;
}

type PipelineResult = [error: Error | null, result: unknown][] | null;

/**
 * The RESP stream of a logical dump, produced on demand: each read pulls the next SCAN batch
 * (the next SCAN is already on the wire while a batch is DUMPed). Memory: one batch (plus the
 * stream's 1 MiB buffer). Any error (lost connection, a refused command) errors the stream.
 */
export function createDumpStream(client: Redis, o: DumpOptions): Readable {
  return Readable.from(dumpChunks(client, o), { objectMode: false, highWaterMark: 1 << 20 });
}

async function* dumpChunks(client: Redis, o: DumpOptions): AsyncGenerator<Buffer> {
  const scan = (cursor: string): Promise<[string, Buffer[]]> => {
    const args: (string | Buffer)[] = [cursor];
    if (o.match !== undefined) args.push('MATCH', o.match);
    args.push('COUNT', String(SCAN_COUNT));
    const p = (client.callBuffer('SCAN', ...args) as Promise<[Buffer, Buffer[]]>).then(([c, keys]) => [c.toString('latin1'), keys] as [string, Buffer[]]);
    // A prefetched SCAN may fail while we wait for something else: never an unhandled rejection.
    p.catch(() => undefined);
    return p;
  };
  for (const db of o.databases) {
    o.signal?.throwIfAborted();
    await client.call('SELECT', db);
    const select = encodeCommand(['SELECT', db]);
    o.stats.bytes += select.length;
    yield select;
    o.stats.keys[db] ??= 0;
    let next = scan('0');
    for (;;) {
      const [cursor, keys] = await next;
      if (cursor !== '0') next = scan(cursor);
      if (keys.length > 0) {
        o.signal?.throwIfAborted();
        const parts: Buffer[] = [];
        let n = 0;
        for (const k of await dumpKeys(client, keys, o.absoluteTtl)) {
          const p = k.payload;
          if (p.length >= 10) o.stats.rdbVersion = Math.max(o.stats.rdbVersion, p.readUInt16LE(p.length - 10));
          pushRestoreCommand(parts, k.key, k.absTtl, p);
          n++;
        }
        o.stats.keys[db] += n;
        o.stats.total += n;
        if (parts.length > 0) {
          const chunk = Buffer.concat(parts);
          o.stats.bytes += chunk.length;
          yield chunk;
        }
      }
      if (cursor === '0') break;
    }
  }
}

/** PEXPIRETIME works here (Redis >= 7, and the ACL allows it). */
async function hasPexpiretime(client: Redis): Promise<boolean> {
  try {
    await client.call('PEXPIRETIME', '__dbs_probe_no_such_key__');
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Restore of a logical dump

/**
 * The newest RDB format a Redis version loads (DUMP payloads carry theirs). Undefined when
 * not known (newer than this table, or not a version): then nothing is refused up front.
 */
export function maxRdbVersion(redisVersion: string): number | undefined {
  const m = /^(\d+)\.(\d+)/.exec(redisVersion);
  if (!m) return undefined;
  const v = Number(m[1]) * 100 + Number(m[2]);
  if (v >= 800) return undefined;
  if (v >= 704) return 12;
  if (v >= 702) return 11;
  if (v >= 700) return 10;
  if (v >= 500) return 9;
  if (v >= 400) return 8;
  if (v >= 302) return 7;
  return 6;
}

interface TargetPlan {
  /** The database a SELECT of the dump goes to. */
  map(db: string): string;
  /** The target's database when the URL names one (and the backup has one database). */
  fixed?: string;
}

function planTargetDbs(target: Endpoint, backupDbs: string[] | undefined): TargetPlan {
  const fixed = target.path !== undefined && target.path !== '' ? target.path : undefined;
  if (fixed !== undefined && backupDbs && backupDbs.length > 1) {
    throw new DbsError(
      'INVALID_ARGUMENT',
      `the backup holds databases ${backupDbs.join(', ')}; the target ${target.url} names database ${fixed}, which can take only one`,
      { hint: `drop the /${fixed} from --to to restore each database under its own number` },
    );
  }
  return fixed !== undefined ? { map: () => fixed, fixed } : { map: (db) => db };
}

/** The databases of a backup from its facts (undefined when they are not recorded). */
function backupDatabases(req: RedisRestoreRequest): string[] | undefined {
  const f = req.facts;
  if (Array.isArray(f['databases'])) return sortDbs((f['databases'] as unknown[]).map(String));
  if (f['keys'] && typeof f['keys'] === 'object') return sortDbs(Object.keys(f['keys'] as object));
  return undefined;
}

function pickArtifact(req: RedisRestoreRequest, ext: string): ArtifactReader {
  const a = req.artifacts.find((x) => x.name.startsWith(`dump${ext}`)) ?? req.artifacts.find((x) => x.name.startsWith('dump')) ?? req.artifacts[0];
  if (!a) throw new DbsError('RESTORE_FAILED', 'the backup has no dump artifact', { hint: 'check the backup with: dbs backup verify ID' });
  return a;
}

function dumpFormatError(e: RespFormatError, name: string): DbsError {
  return new DbsError('RESTORE_FAILED', `${name} is not a valid RESP command stream: ${e.message}`, {
    hint: 'the artifact is damaged or is not a dbs Redis dump; check it with: dbs backup verify ID',
  });
}

interface Pending {
  kind: 'select' | 'flush' | 'restore';
  db: string;
  key?: Buffer;
}

/** Reads the dump once, without writing: the first key of the backup that exists in the target. */
async function findExistingKey(client: Redis, stream: Readable, plan: TargetPlan, signal: AbortSignal, name: string): Promise<{ db: string; key: Buffer } | undefined> {
  const parser = new RespCommandParser();
  const nonEmpty = new Map<string, boolean>();
  const isNonEmpty = async (db: string): Promise<boolean> => {
    let v = nonEmpty.get(db);
    if (v === undefined) {
      await client.call('SELECT', db);
      v = Number(await client.call('DBSIZE')) > 0;
      nonEmpty.set(db, v);
    }
    return v;
  };
  let db = plan.map('0');
  let check = await isNonEmpty(db);
  let keys: Buffer[] = [];
  let keysDb = db;
  const flushKeys = async (): Promise<{ db: string; key: Buffer } | undefined> => {
    if (keys.length === 0) return undefined;
    const pl = client.pipeline();
    pl.call('SELECT', keysDb);
    for (const k of keys) pl.callBuffer('EXISTS', k);
    const res = (await pl.exec()) as PipelineResult;
    if (!res) throw new Error('the EXISTS pipeline was discarded');
    for (let i = 0; i < res.length; i++) {
      const [err, v] = res[i];
      if (err) throw err;
      if (i > 0 && Number(v) > 0) return { db: keysDb, key: keys[i - 1] };
    }
    keys = [];
    return undefined;
  };
  try {
    for await (const chunk of stream) {
      signal.throwIfAborted();
      for (const cmd of parser.push(chunk as Buffer)) {
        if (argIs(cmd[0], 'SELECT') && cmd.length === 2) {
          const found = await flushKeys();
          if (found) return found;
          db = plan.map(cmd[1].toString('latin1'));
          keysDb = db;
          check = await isNonEmpty(db);
        } else if (argIs(cmd[0], 'RESTORE') && cmd.length >= 4 && check) {
          keys.push(cmd[1]);
          if (keys.length >= RESTORE_BATCH_COMMANDS) {
            const found = await flushKeys();
            if (found) return found;
          }
        }
      }
    }
    parser.end();
    return await flushKeys();
  } catch (e) {
    if (e instanceof RespFormatError) throw dumpFormatError(e, name);
    throw e;
  } finally {
    stream.destroy();
  }
}

function restoreErrorFor(err: Error, p: Pending, target: Endpoint, restored: number): DbsError {
  const msg = redactText(err.message.split('\n')[0], [target.password]);
  const where = `Redis target ${redisAddress(target)}`;
  const so = `; ${restored} keys were restored before it`;
  if (p.kind === 'select' && /out of range|invalid DB index/i.test(msg)) {
    return new DbsError('INVALID_ARGUMENT', `database ${p.db} does not exist on ${where}: ${msg}${so}`, {
      hint: 'raise `databases` in the target\'s redis.conf, or restore a single-database backup into another database with --to redis://host:port/N',
    });
  }
  if (/^BUSYKEY\b/.test(msg)) {
    return new DbsError('ALREADY_EXISTS', `key ${JSON.stringify(printableKey(p.key ?? Buffer.alloc(0)))} already exists in database ${p.db} of ${where}${so}`, {
      hint: 'pass --replace to overwrite existing keys, or --flush to empty each database first',
    });
  }
  if (/payload version or checksum/i.test(msg)) {
    return new DbsError('RESTORE_FAILED', `${where} cannot load key ${JSON.stringify(printableKey(p.key ?? Buffer.alloc(0)))}: ${msg}${so}`, {
      hint: 'DUMP payloads load only into the same or a newer Redis version than the source: restore into a newer server',
    });
  }
  if (/^OOM\b/.test(msg)) {
    return new DbsError('RESTORE_FAILED', `${where} is out of memory: ${msg}${so}`, { hint: 'raise the target\'s maxmemory or free memory, then restore with --flush or --replace' });
  }
  if (/^NOPERM\b/.test(msg)) return classifyRedisError(err, target, 'target');
  const what = p.kind === 'flush' ? 'FLUSHDB' : p.kind === 'select' ? 'SELECT' : `RESTORE of key ${JSON.stringify(printableKey(p.key ?? Buffer.alloc(0)))}`;
  return new DbsError('RESTORE_FAILED', `${where} refused ${what} in database ${p.db}: ${msg}${so}`, { hint: 'see the target server\'s log' });
}

interface RestoreRun {
  keys: number;
  keysByDb: Record<string, number>;
  bytes: number;
  flushed: string[];
}

/** Sends the dump's commands, pipelined, at most RESTORE_IN_FLIGHT batches at once. */
async function sendDump(
  client: Redis,
  stream: Readable,
  o: { plan: TargetPlan; flush: boolean; target: Endpoint; signal: AbortSignal; name: string },
): Promise<RestoreRun> {
  const run: RestoreRun = { keys: 0, keysByDb: {}, bytes: 0, flushed: [] };
  const parser = new RespCommandParser();
  const flushed = new Set<string>();
  const seenSourceDbs = new Set<string>();
  let failure: DbsError | undefined;
  let pl = client.pipeline();
  let pending: Pending[] = [];
  let batchBytes = 0;
  const inFlight: Promise<void>[] = [];

  const send = (): void => {
    if (pending.length === 0) return;
    const batch = pending;
    const p = pl;
    pl = client.pipeline();
    pending = [];
    batchBytes = 0;
    // Never rejects: the first failure is kept and stops the restore.
    inFlight.push(
      p.exec().then(
        (res: PipelineResult) => {
          if (!res) {
            failure ??= new DbsError('RESTORE_FAILED', `a pipeline to Redis target ${redisAddress(o.target)} was discarded`);
            return;
          }
          for (let i = 0; i < res.length; i++) {
            const [err] = res[i];
            const b = batch[i];
            if (err) {
              failure ??= restoreErrorFor(err, b, o.target, run.keys);
              return;
            }
            if (b.kind === 'restore') {
              run.keys++;
              run.keysByDb[b.db] = (run.keysByDb[b.db] ?? 0) + 1;
            }
          }
        },
        (e: unknown) => {
          failure ??= o.signal.aborted ? new DbsError('INTERRUPTED', 'the restore was interrupted') : classifyRedisError(e, o.target, 'target', 'RESTORE_FAILED');
        },
      ),
    );
  };
  const flushOnce = (db: string): void => {
    if (!o.flush || flushed.has(db)) return;
    flushed.add(db);
    run.flushed.push(db);
    pl.call('FLUSHDB');
    pending.push({ kind: 'flush', db });
  };
  const select = (db: string): void => {
    pl.call('SELECT', db);
    pending.push({ kind: 'select', db });
  };

  // Until the dump's first SELECT, commands go to database 0 (or the one the URL names).
  let db = o.plan.map('0');
  select(db);
  try {
    for await (const chunk of stream) {
      if (failure) break;
      o.signal.throwIfAborted();
      run.bytes += (chunk as Buffer).length;
      for (const cmd of parser.push(chunk as Buffer)) {
        if (argIs(cmd[0], 'RESTORE') && cmd.length >= 4) {
          const args = cmd.slice(1);
          flushOnce(db);
          pl.callBuffer('RESTORE', ...args);
          pending.push({ kind: 'restore', db, key: cmd[1] });
          for (const a of args) batchBytes += a.length;
        } else if (argIs(cmd[0], 'SELECT') && cmd.length === 2) {
          const src = cmd[1].toString('latin1');
          if (!isDbIndex(src)) throw new DbsError('RESTORE_FAILED', `${o.name} selects database ${JSON.stringify(printableKey(cmd[1]))}, which is not a database number`, { hint: 'the artifact is not a dbs Redis dump' });
          seenSourceDbs.add(src);
          if (o.plan.fixed !== undefined && seenSourceDbs.size > 1) {
            throw new DbsError('INVALID_ARGUMENT', `the backup holds more than one database (${[...seenSourceDbs].join(', ')}); the target ${o.target.url} names database ${o.plan.fixed}, which can take only one`, {
              hint: `drop the /${o.plan.fixed} from --to to restore each database under its own number`,
            });
          }
          db = o.plan.map(src);
          select(db);
          flushOnce(db);
        } else {
          throw new DbsError('RESTORE_FAILED', `${o.name} holds the command ${JSON.stringify(printableKey(cmd[0]))} (command ${parser.commands}); a dbs Redis dump holds only SELECT and RESTORE`, {
            hint: 'the artifact is not a dbs Redis dump; nothing else is sent to the target',
          });
        }
        if (pending.length >= RESTORE_BATCH_COMMANDS || batchBytes >= RESTORE_BATCH_BYTES) {
          send();
          while (inFlight.length >= RESTORE_IN_FLIGHT) await inFlight.shift();
          if (failure) break;
        }
      }
    }
    if (!failure) {
      parser.end();
      send();
    }
    await Promise.all(inFlight);
  } catch (e) {
    await Promise.allSettled(inFlight);
    if (o.signal.aborted) throw new DbsError('INTERRUPTED', 'the restore was interrupted');
    if (e instanceof RespFormatError) throw dumpFormatError(e, o.name);
    throw failure ?? e;
  } finally {
    stream.destroy();
  }
  if (failure) throw failure;
  return run;
}

/**
 * Puts a Redis target back after a failed restore, over a new connection and with a fresh
 * time limit (the restore's may be broken or aborted). Returns the error to throw.
 */
async function undoRestore(target: Endpoint, art: ArtifactReader, plan: TargetPlan, undo: Undo, e: unknown, ctx: EngineRunContext): Promise<unknown> {
  const signal = AbortSignal.timeout(120_000);
  let conn: RedisConnection | undefined;
  try {
    conn = await connectRedis(target, { role: 'target', signal, name: 'dbs-restore-undo', ...egressOpt(ctx) });
    const client = conn.client;
    await rollbackRestore(client, await art.open(), plan.map, undo, async (file) => {
      await sendDump(client, createReadStream(file), { plan: { map: (d) => d }, flush: false, target, signal, name: 'the undo file' });
    });
    ctx.log('the restore failed; the target was put back as it was');
    if (e instanceof DbsError) return new DbsError(e.code, `${e.message}; the target was put back as it was`, { hint: e.hint, cause: e.cause, details: { ...e.details, targetRestored: true } });
    return e;
  } catch (undoErr) {
    ctx.log(`putting the target back failed: ${describeError(undoErr)}`);
    const msg = e instanceof DbsError ? e.message : describeError(e);
    return new DbsError(e instanceof DbsError ? e.code : 'RESTORE_FAILED', `${msg}; putting the target back failed too: ${describeError(undoErr)}`, {
      hint: 'the target holds a partial restore',
      cause: e,
      details: { targetRestored: false },
    });
  } finally {
    conn?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The engine

export class RedisEngine implements Engine<RedisSelection, RedisFacts, RedisRestoreOptions> {
  readonly kind: SourceKind = 'redis';
  readonly types: readonly BackupType[] = ['logical', 'snapshot'];

  async tools(): Promise<ToolInfo[]> {
    return Promise.all([describeRedisTool(REDIS_CLI), describeRedisTool(REDIS_CHECK_RDB)]);
  }

  async probe(source: Endpoint, selection: RedisSelection, ctx: { signal: AbortSignal; egress?: Egress }): Promise<ProbeInfo> {
    const conn = await connectRedis(source, { role: 'source', signal: ctx.signal, name: 'dbs-probe', ...egressOpt(ctx) });
    try {
      const c = conn.client;
      const server = parseServerInfo(String(await c.call('INFO', 'server')));
      const keyspace = parseKeyspace(String(await c.call('INFO', 'keyspace')));
      const count = await databaseCount(c);
      const dbs = selectedDatabases(source, selection, keyspace);
      const problems = databaseProblems(dbs, count);
      if (selection.tables.length > 0) problems.push('tables do not apply to Redis sources (select databases, and keys with a match pattern)');
      const absoluteTtl = await hasPexpiretime(c);
      let role: string | undefined;
      try {
        role = /^role:(\S+)/m.exec(String(await c.call('INFO', 'replication')))?.[1];
      } catch {
        role = undefined;
      }
      return {
        flavor: server.flavor,
        serverVersion: server.version,
        problems,
        facts: {
          databases: dbs,
          keyspace,
          ...(count !== undefined ? { databaseCount: count } : {}),
          ...(selection.match !== undefined ? { match: selection.match } : {}),
          ttl: absoluteTtl ? 'PEXPIRETIME' : 'PTTL',
          ...(role ? { role } : {}),
          ...(server.fields['redis_mode'] ? { mode: server.fields['redis_mode'] } : {}),
        },
      };
    } catch (e) {
      throw ctx.signal.aborted ? new DbsError('INTERRUPTED', 'the probe was interrupted') : classifyRedisError(e, source, 'source');
    } finally {
      conn.close();
    }
  }

  async backup(req: RedisBackupRequest, ctx: EngineRunContext): Promise<RedisBackupOutcome> {
    if (req.type === 'logical') return this.#backupLogical(req, ctx);
    if (req.type === 'snapshot') return this.#backupSnapshot(req, ctx);
    throw new DbsError('INVALID_ARGUMENT', `redis sources have no ${req.type} backups`, { hint: 'use --type logical or --type snapshot' });
  }

  async #backupLogical(req: RedisBackupRequest, ctx: EngineRunContext): Promise<RedisBackupOutcome> {
    const source = req.source;
    const conn = await connectRedis(source, { role: 'source', signal: ctx.signal, name: 'dbs-backup', ...egressOpt(ctx) });
    let streamError: unknown;
    try {
      const c = conn.client;
      let server: ReturnType<typeof parseServerInfo>;
      let keyspace: Record<string, number>;
      let count: number | undefined;
      try {
        server = parseServerInfo(String(await c.call('INFO', 'server')));
        keyspace = parseKeyspace(String(await c.call('INFO', 'keyspace')));
        count = await databaseCount(c);
      } catch (e) {
        throw classifyRedisError(e, source, 'source', 'BACKUP_FAILED');
      }
      let dbs = selectedDatabases(source, req.selection, keyspace);
      const notNumbers = dbs.filter((d) => !isDbIndex(d));
      if (notNumbers.length > 0) {
        throw new DbsError('INVALID_ARGUMENT', `${notNumbers.map((d) => JSON.stringify(d)).join(', ')} ${notNumbers.length > 1 ? 'are not Redis database numbers' : 'is not a Redis database number'}`, {
          hint: 'Redis databases are numbers: 0, 1, 2, ...',
        });
      }
      const problems = databaseProblems(dbs, count);
      if (problems.length > 0) {
        throw new DbsError('SOURCE_NOT_FOUND', `Redis source ${redisAddress(source)}: ${problems.join('; ')}`, { hint: 'check the plan\'s databases (and the db number in the source URL)' });
      }
      // An empty server still gives a valid, non-empty dump (restoring it with --flush empties the target).
      if (dbs.length === 0) dbs = [source.path ?? '0'];
      const absoluteTtl = await hasPexpiretime(c);
      ctx.log(`dumping databases ${dbs.join(', ')} of Redis ${server.version} at ${redisAddress(source)}${req.selection.match !== undefined ? ` (keys matching ${JSON.stringify(req.selection.match)})` : ''}, TTLs from ${absoluteTtl ? 'PEXPIRETIME' : 'PTTL and this host\'s clock'}`);
      const stats: DumpStats = { keys: {}, total: 0, rdbVersion: 0, bytes: 0 };
      const inner = createDumpStream(c, {
        databases: dbs,
        ...(req.selection.match !== undefined ? { match: req.selection.match } : {}),
        absoluteTtl,
        signal: ctx.signal,
        stats,
      });
      inner.on('error', (e) => {
        streamError ??= e;
      });
      try {
        await req.sink.write('dump', inner, { extension: '.resp' });
      } catch (e) {
        inner.destroy();
        const cause = streamError ?? e;
        if (ctx.signal.aborted) throw new DbsError('INTERRUPTED', 'the Redis dump was interrupted');
        if (cause instanceof DbsError) throw cause;
        if (streamError !== undefined) {
          throw classifyRedisError(streamError, source, 'source', 'BACKUP_FAILED');
        }
        throw e;
      }
      ctx.log(`dumped ${stats.total} keys (${Object.entries(stats.keys).map(([d, n]) => `db${d}: ${n}`).join(', ')})`);
      return {
        serverVersion: server.version,
        toolName: 'ioredis',
        facts: {
          serverVersion: server.version,
          flavor: server.flavor,
          databases: dbs,
          keys: stats.keys,
          totalKeys: stats.total,
          ...(req.selection.match !== undefined ? { match: req.selection.match } : {}),
          consistency: CONSISTENCY,
          ttl: absoluteTtl ? 'absolute (PEXPIRETIME)' : 'absolute (PTTL + the backup host\'s clock)',
          ...(stats.rdbVersion > 0 ? { rdbVersion: stats.rdbVersion } : {}),
          format: 'RESP: SELECT db, RESTORE key abs-ms payload REPLACE ABSTTL (load with redis-cli --pipe)',
        },
      };
    } finally {
      conn.close();
    }
  }

  async #backupSnapshot(req: RedisBackupRequest, ctx: EngineRunContext): Promise<RedisBackupOutcome> {
    const source = req.source;
    if (req.selection.databases.length > 0 || req.selection.match !== undefined || (source.path !== undefined && source.path !== '')) {
      ctx.log('a snapshot (RDB) holds every database of the server: the database selection and match pattern do not apply');
    }
    const file = join(ctx.tmpDir, `redis-${randomBytes(4).toString('hex')}.rdb`);
    if (ctx.egress && !source.params['socket']) {
      ctx.log(`redis-cli cannot bind to the gateway address ${ctx.egress.localAddress}: its connection (the RDB transfer) leaves from this host's default address`);
    }
    try {
      const snap = await fetchRdb(source, file, ctx);
      const check = await checkRdb(file, { signal: ctx.signal });
      for (const l of check.tail) ctx.log(`redis-check-rdb: ${l}`);
      if (!check.ok) throw rdbCheckError('BACKUP_FAILED', `the RDB of Redis ${redisAddress(source)}`, check);
      const head = Buffer.alloc(9);
      const fh = await open(file, 'r');
      try {
        await fh.read(head, 0, 9, 0);
      } finally {
        await fh.close();
      }
      const rdbVersion = rdbHeaderVersion(head);
      const cliVersion = (await describeRedisTool(REDIS_CLI)).version;
      await req.sink.write('dump', createReadStream(file), { extension: '.rdb', sizeHint: snap.bytes });
      return {
        ...(check.redisVersion ? { serverVersion: check.redisVersion } : {}),
        toolName: REDIS_CLI,
        ...(cliVersion ? { toolVersion: cliVersion } : {}),
        facts: {
          ...(check.redisVersion ? { serverVersion: check.redisVersion } : {}),
          rdbBytes: snap.bytes,
          ...(rdbVersion !== undefined ? { rdbVersion } : {}),
          checked: true,
          ...(check.keys !== undefined ? { totalKeys: check.keys } : {}),
          ...(check.expires !== undefined ? { expires: check.expires } : {}),
          consistency: 'point-in-time (RDB)',
        },
      };
    } finally {
      await rm(file, { force: true });
    }
  }

  async restore(req: RedisRestoreRequest, ctx: EngineRunContext): Promise<RestoreOutcome> {
    if (req.type === 'snapshot') return this.#restoreSnapshot(req, ctx);
    if (req.type !== 'logical') throw new DbsError('INVALID_ARGUMENT', `redis backups have no ${req.type} type`, { hint: 'logical or snapshot' });
    if (req.options.toPath !== undefined) {
      throw new DbsError('INVALID_ARGUMENT', 'a logical Redis backup is restored into a running server, not into a directory', {
        hint: 'restore it with --to redis://host:port (the artifact itself loads with: zstd -dc dump.resp.zst | redis-cli --pipe)',
      });
    }
    const target = req.target;
    const art = pickArtifact(req, '.resp');
    const backupDbs = backupDatabases(req);
    const plan = planTargetDbs(target, backupDbs);
    const conn: RedisConnection = await connectRedis(target, { role: 'target', signal: ctx.signal, name: 'dbs-restore', ...egressOpt(ctx) });
    try {
      const c = conn.client;
      const needRdb = Number(req.facts['rdbVersion'] ?? 0);
      if (needRdb > 0) {
        const tv = parseServerInfo(String(await c.call('INFO', 'server'))).fields['redis_version'] ?? '';
        const max = maxRdbVersion(tv);
        if (max !== undefined && needRdb > max) {
          throw new DbsError('RESTORE_FAILED', `Redis target ${redisAddress(target)} (${tv}) cannot load this backup: its DUMP payloads are RDB version ${needRdb}, the target reads up to ${max}; nothing was written`, {
            hint: `restore into a Redis of the source's version${req.facts['serverVersion'] ? ` (${String(req.facts['serverVersion'])})` : ''} or newer`,
          });
        }
      }
      const count = await databaseCount(c);
      if (backupDbs && count !== undefined) {
        const bad = [...new Set(backupDbs.map(plan.map))].filter((d) => !isDbIndex(d) || Number(d) >= count);
        if (bad.length > 0) {
          throw new DbsError('INVALID_ARGUMENT', `Redis target ${redisAddress(target)} has ${count} databases; the backup needs database ${bad.join(', ')}`, {
            hint: 'raise `databases` in the target\'s redis.conf, or restore a single-database backup into another database with --to redis://host:port/N',
          });
        }
      }
      const replace = Boolean(req.options.replace);
      const flush = Boolean(req.options.flush);
      if (!replace && !flush) {
        // Refuse before writing anything. Skipped when every target database is empty.
        let mustCheck = true;
        if (backupDbs) {
          mustCheck = false;
          for (const d of new Set(backupDbs.map(plan.map))) {
            await c.call('SELECT', d);
            if (Number(await c.call('DBSIZE')) > 0) mustCheck = true;
          }
        }
        if (mustCheck) {
          ctx.log(`checking that no key of the backup exists in ${target.url} (pass --replace or --flush to skip)`);
          const found = await findExistingKey(c, await art.open(), plan, ctx.signal, art.name);
          if (found) {
            throw new DbsError('ALREADY_EXISTS', `key ${JSON.stringify(printableKey(found.key))} of the backup already exists in database ${found.db} of Redis target ${redisAddress(target)}; nothing was written`, {
              hint: 'pass --replace to overwrite existing keys, or --flush to empty each database of the backup first',
            });
          }
        }
      }
      // What the restore overwrites is saved first, so that a failure can put it back.
      const absoluteTtl = await hasPexpiretime(c);
      const targetDbs = backupDbs ? [...new Set(backupDbs.map(plan.map))] : await dumpDatabases(await art.open(), plan.map);
      const undo: Undo = flush
        ? await saveFlushed(() => createDumpStream(c, { databases: targetDbs, absoluteTtl, signal: ctx.signal, stats: { keys: {}, total: 0, rdbVersion: 0, bytes: 0 } }), targetDbs, ctx.tmpDir)
        : replace
          ? await saveReplaced(c, await art.open(), plan.map, { dir: ctx.tmpDir, absoluteTtl, signal: ctx.signal })
          : { flushed: [] };
      let run: RestoreRun;
      try {
        run = await sendDump(c, await art.open(), { plan, flush, target, signal: ctx.signal, name: art.name });
      } catch (e) {
        throw await undoRestore(target, art, plan, undo, e, ctx);
      }
      ctx.log(`restored ${run.keys} keys into ${target.url}${run.flushed.length ? ` (flushed databases ${run.flushed.join(', ')} first)` : ''}`);
      return {
        bytes: run.bytes,
        facts: { keys: run.keys, keysByDb: run.keysByDb, databases: Object.keys(run.keysByDb), ...(run.flushed.length ? { flushed: run.flushed } : {}) },
      };
    } catch (e) {
      if (ctx.signal.aborted) throw new DbsError('INTERRUPTED', 'the restore was interrupted');
      if (e instanceof DbsError) throw e;
      throw classifyRedisError(e, target, 'target', 'RESTORE_FAILED');
    } finally {
      conn.close();
    }
  }

  async #restoreSnapshot(req: RedisRestoreRequest, ctx: EngineRunContext): Promise<RestoreOutcome> {
    const dir = req.options.toPath;
    if (dir === undefined || dir === '') {
      throw new DbsError('INVALID_ARGUMENT', `a snapshot (RDB) backup cannot be loaded into the running Redis server ${req.target.url}`, {
        hint: 'restore it to a directory with --to-dir DIR (writes DIR/dump.rdb), then stop the target Redis, copy the file into its dir (CONFIG GET dir) under its dbfilename (CONFIG GET dbfilename) and start it again',
      });
    }
    const art = pickArtifact(req, '.rdb');
    await mkdir(dir, { recursive: true });
    const dest = join(dir, 'dump.rdb');
    const exists = await stat(dest).then(
      () => true,
      () => false,
    );
    if (exists && !req.options.replace) {
      throw new DbsError('ALREADY_EXISTS', `${dest} exists`, { hint: 'pass --replace to overwrite it, or restore into another directory' });
    }
    const tmp = join(dir, `.dump.rdb.dbs-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
    let bytes = 0;
    try {
      const src = await art.open();
      src.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      await pipeline(src, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }), { signal: ctx.signal });
      const fh = await open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      let checked = false;
      let keys: number | undefined;
      if (findOnPath(REDIS_CHECK_RDB)) {
        const check = await checkRdb(tmp, { signal: ctx.signal });
        if (!check.ok) throw rdbCheckError('RESTORE_FAILED', `the restored RDB (${art.name})`, check);
        checked = true;
        keys = check.keys;
      } else {
        ctx.log(`${REDIS_CHECK_RDB} is not on PATH: the restored RDB was not checked (its sha256 was)`);
      }
      await rename(tmp, dest);
      const load = [
        'stop the target redis-server',
        `copy ${dest} into its dir (CONFIG GET dir) under its dbfilename (CONFIG GET dbfilename; default dump.rdb), owned by the redis user`,
        'with appendonly yes, start once with appendonly no (Redis loads the AOF instead of the RDB), then CONFIG SET appendonly yes',
        'start redis-server',
      ];
      for (const l of load) ctx.log(`to load: ${l}`);
      return { bytes, facts: { path: dest, rdbBytes: bytes, checked, ...(keys !== undefined ? { keys } : {}), load } };
    } catch (e) {
      await rm(tmp, { force: true });
      if (ctx.signal.aborted) throw new DbsError('INTERRUPTED', 'the restore was interrupted');
      throw e;
    }
  }
}

/** The gateway address for connections the engine makes itself (never for a unix socket: connectRedis checks). */
function egressOpt(ctx: { egress?: Egress }): { egress?: Egress } {
  return ctx.egress ? { egress: ctx.egress } : {};
}
