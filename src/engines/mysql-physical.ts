// MySQL/MariaDB physical and incremental backups with mariabackup (MariaDB) or xtrabackup
// (MySQL): `--backup --stream=xbstream` of the whole server into ONE artifact ("backup",
// .xbstream); incrementals copy the pages newer than the parent's to_lsn. Restores extract
// the chain (mbstream/xbstream), prepare it (full, then each incremental in order), move the
// files into an empty datadir and optionally start a server on it.
//
// The backup tool reads the server's data files directly: it must run on the database host,
// with --datadir of that server. Secrets reach it through a 0600 option file only.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, lstatSync, type Dirent } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { hostname as osHostname, tmpdir, userInfo } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { execa, type ResultPromise } from 'execa';
import { DbsError, describeError, isAbort, type ErrorCode } from '../errors.js';
import { redactText } from '../secret.js';
import type {
  ArtifactReader,
  BackupOutcome,
  BackupRequest,
  ChainLink,
  Endpoint,
  EngineRunContext,
  ProbeInfo,
  RestoreOutcome,
  RestoreRequest,
  Selection,
  ToolInfo,
} from './types.js';
import {
  connTarget,
  describeAddress,
  describeTarget,
  flavorOf,
  quoteOptionValue,
  rows,
  toolEnv,
  withConnection,
  writeOptionFile,
  type ConnTarget,
  type MysqlFlavor,
} from './mysql-conn.js';
import type { BinlogFacts, DumpExit } from './mysql-dump.js';
import {
  buildBackupArgs,
  buildExtractArgs,
  buildMoveBackArgs,
  buildPrepareArgs,
  buildServerArgs,
  compareLsn,
  completedOk,
  identityDiff,
  INSTALL_HINT,
  lsnOf,
  majorMinor,
  normalizeDir,
  parseBackupMyCnf,
  parseBinlogInfoFile,
  parseBinlogPos,
  parseCheckpoints,
  parseKeyValues,
  parsePhysicalToolVersion,
  redactToolLine,
  serverIdentity,
  TOOL_NAMES,
  toolErrorLines,
  toolKindFor,
  type Checkpoints,
  type PhysicalToolKind,
  type ServerIdentity,
} from './mysql-physical-files.js';
import { backupHint, XbstreamGuard } from './mysql-physical-stream.js';
import { readGrants } from './mysql-schema.js';

/** The artifact name of a physical or incremental backup: one xbstream. */
export const PHYSICAL_ARTIFACT = 'backup';
const STDERR_TAIL_LINES = 30;
const SERVER_START_TIMEOUT_MS = 600_000;

/** Facts a physical/incremental backup records in its manifest (read back by restore and by incrementals). */
export interface PhysicalBackupFacts {
  flavor: MysqlFlavor;
  /** 'full' for type physical, 'incremental' for type incremental. */
  backupKind: 'full' | 'incremental';
  /** mariabackup | xtrabackup: decides the tools of a restore. */
  tool: PhysicalToolKind;
  toolVersion: string;
  serverVersion: string;
  /**
   * LSN range from xtrabackup_checkpoints, as decimal strings (64-bit): `from` is 0 for a full
   * backup and the parent's `to` for an incremental; `to` is the checkpoint the backup starts
   * from (the next incremental's base), `last` the end of the copied redo log (the point in
   * time the prepared backup reflects).
   */
  lsn: { from: string; to: string; last: string };
  /** Binlog coordinates of the backup's point in time, when the server writes a binlog. */
  binlog?: BinlogFacts;
  /** Which server this is of (incrementals must continue on the same one). */
  server: ServerIdentity;
  /** [mysqld] settings of the backup's backup-my.cnf (page size, data file path...). */
  innodb: Record<string, string>;
  /** The backup tool's own id of this backup (xtrabackup_info uuid). */
  backupUuid?: string;
  /** The user the backup connected as (a started restore lets this user in). */
  user: string;
  /** Raw bytes of the xbstream, and the number of files in it. */
  streamBytes: number;
  files: number;
  /** The parent backup (incrementals). */
  parentId?: string;
}

// ---------------------------------------------------------------------------------------------
// Tools

export interface PhysicalTool {
  kind: PhysicalToolKind;
  /** e.g. "mariadb-backup" */
  name: string;
  path: string;
  /** The tool's version ("10.11.19-MariaDB", "8.0.35-30"). */
  version: string;
  /** The server version it was built from: decides what it can back up. */
  serverVersion: string;
  stream: { name: string; path: string };
}

/** Finds an executable on PATH, then in the usual sbin/libexec dirs (servers live there). */
export async function findProgram(name: string, extraDirs: string[] = []): Promise<string | undefined> {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean), ...extraDirs];
  if (isAbsolute(name)) dirs.splice(0, dirs.length, '');
  for (const dir of dirs) {
    const p = dir ? join(dir, name) : name;
    try {
      const s = await stat(p);
      if (s.isFile() && (s.mode & 0o111) !== 0) return p;
    } catch {
      // next
    }
  }
  return undefined;
}

const SERVER_DIRS = ['/usr/sbin', '/usr/libexec', '/usr/local/sbin', '/usr/local/mysql/bin', '/opt/mysql/bin'];

async function toolVersion(path: string): Promise<{ version: string; server: string }> {
  try {
    const r = await execa(path, ['--version'], { reject: false, timeout: 10_000, stdin: 'ignore', env: toolEnv(), extendEnv: false });
    const v = parsePhysicalToolVersion(`${String(r.stdout)}\n${String(r.stderr)}`);
    return { version: v.version, server: v.server };
  } catch {
    return { version: '', server: '' };
  }
}

async function findFirst(names: string[], extraDirs: string[] = []): Promise<{ name: string; path: string } | undefined> {
  for (const name of names) {
    const path = await findProgram(name, extraDirs);
    if (path) return { name, path };
  }
  return undefined;
}

/** The backup tool and its stream extractor for a server flavor; TOOL_MISSING when absent. */
export async function resolvePhysicalTool(kind: PhysicalToolKind): Promise<PhysicalTool> {
  const names = TOOL_NAMES[kind];
  const backup = await findFirst(names.backup);
  if (!backup) {
    throw new DbsError('TOOL_MISSING', `${kind === 'mariabackup' ? 'mariadb-backup (mariabackup)' : 'xtrabackup'} was not found on PATH`, {
      hint: INSTALL_HINT[kind],
      details: { tool: kind },
    });
  }
  const stream = await findFirst(names.stream);
  if (!stream) {
    throw new DbsError('TOOL_MISSING', `${names.stream.join(' or ')} was not found on PATH (it extracts ${kind}'s xbstream)`, {
      hint: INSTALL_HINT[kind],
      details: { tool: names.stream[0] },
    });
  }
  const v = await toolVersion(backup.path);
  return { kind, name: backup.name, path: backup.path, version: v.version, serverVersion: v.server, stream };
}

const PURPOSE: Record<string, string> = {
  mariabackup: 'mysql physical and incremental backups of MariaDB servers, and their restores',
  mbstream: 'extracts MariaDB physical backups (xbstream) when restoring',
  xtrabackup: 'mysql physical and incremental backups of MySQL servers (Percona XtraBackup), and their restores',
  xbstream: 'extracts MySQL physical backups (xbstream) when restoring',
};

/** mariabackup, mbstream, xtrabackup, xbstream: found or not (for `dbs doctor`). */
export async function listPhysicalTools(): Promise<ToolInfo[]> {
  const out: ToolInfo[] = [];
  for (const kind of ['mariabackup', 'xtrabackup'] as const) {
    const names = TOOL_NAMES[kind];
    const backup = await findFirst(names.backup);
    const v = backup ? await toolVersion(backup.path) : undefined;
    out.push({
      name: kind,
      found: backup !== undefined,
      ...(backup ? { path: backup.path } : {}),
      ...(v?.version ? { version: v.version } : {}),
      purpose: PURPOSE[kind] ?? kind,
    });
    const streamName = names.stream[0] as string;
    const stream = await findFirst(names.stream);
    out.push({
      name: streamName,
      found: stream !== undefined,
      ...(stream ? { path: stream.path } : {}),
      // mbstream/xbstream belong to the backup tool's package and have its version.
      ...(stream && v?.version ? { version: v.version } : {}),
      purpose: PURPOSE[streamName] ?? streamName,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The source server

export interface PhysicalServer {
  flavor: MysqlFlavor;
  version: string;
  datadir: string;
  hostname: string;
  serverId: number;
  port: number;
  uuid?: string;
  logBin: boolean;
  /** InnoDB's current log sequence number, when the server tells. */
  lsn?: string;
  identity: ServerIdentity;
}

async function readServer(t: ConnTarget, signal: AbortSignal): Promise<PhysicalServer> {
  return withConnection(t, 'source', signal, async (conn) => {
    const [r] = await rows<Record<string, string | number | null>>(
      conn,
      'SELECT VERSION() AS v, @@version_comment AS c, @@datadir AS d, @@hostname AS h, @@server_id AS s, @@port AS p, @@log_bin AS b',
    );
    const version = String(r?.['v'] ?? '');
    const flavor = flavorOf(`${version} ${String(r?.['c'] ?? '')}`);
    let uuid: string | undefined;
    if (flavor === 'mysql') {
      try {
        const [u] = await rows<{ u: string }>(conn, 'SELECT @@server_uuid AS u');
        if (u?.u) uuid = String(u.u);
      } catch {
        // very old MySQL
      }
    }
    const lsn = await currentLsn(conn, flavor);
    const base = {
      flavor,
      version,
      datadir: normalizeDir(String(r?.['d'] ?? '')),
      hostname: String(r?.['h'] ?? ''),
      serverId: Number(r?.['s'] ?? 0),
      port: Number(r?.['p'] ?? 0),
      logBin: String(r?.['b'] ?? '0') === '1',
      ...(uuid ? { uuid } : {}),
      ...(lsn ? { lsn } : {}),
    };
    return {
      ...base,
      identity: serverIdentity({
        flavor,
        hostname: base.hostname,
        serverId: base.serverId,
        datadir: base.datadir,
        port: base.port,
        ...(uuid ? { uuid } : {}),
      }),
    };
  });
}

/** InnoDB's current LSN: a status variable (MariaDB, MySQL 8.0.30+) or SHOW ENGINE INNODB STATUS. */
async function currentLsn(conn: import('mysql2/promise').Connection, flavor: MysqlFlavor): Promise<string | undefined> {
  const name = flavor === 'mariadb' ? 'Innodb_lsn_current' : 'Innodb_redo_log_current_lsn';
  try {
    const r = await rows<{ Value: string }>(conn, `SHOW GLOBAL STATUS LIKE '${name}'`);
    const v = lsnOf(String(r[0]?.Value ?? ''));
    if (v) return v;
  } catch {
    // fall through
  }
  try {
    const r = await rows<{ Status: string }>(conn, 'SHOW ENGINE INNODB STATUS');
    const m = /Log sequence number\s+(\d+)/.exec(String(r[0]?.Status ?? ''));
    return m?.[1];
  } catch {
    return undefined;
  }
}

/**
 * The datadir to pass to the tool: `?datadir=` of the source URL, else the server's @@datadir,
 * which is only trusted when the server runs on this host (same hostname): otherwise the tool
 * would copy the files of whatever server happens to live under that path here.
 */
async function resolveDatadir(source: Endpoint, server: PhysicalServer, what: string): Promise<string> {
  const given = source.params['datadir'];
  const here = osHostname();
  if (!given && server.hostname && server.hostname !== here) {
    throw new DbsError(
      'REFUSED',
      `the server at ${what} runs on host "${server.hostname}", but dbs runs on "${here}": ${server.flavor === 'mariadb' ? 'mariabackup' : 'xtrabackup'} reads the server's data files and must run on the database host`,
      {
        hint: 'run dbs on the database host, or, when the datadir is mounted here, name it with ?datadir=/path in the source URL',
        details: { serverHostname: server.hostname, hostname: here },
      },
    );
  }
  const datadir = normalizeDir(given ? resolve(given) : server.datadir);
  if (!datadir) throw new DbsError('SOURCE_NOT_FOUND', `the server at ${what} did not tell its datadir`, { hint: 'name it with ?datadir=/path in the source URL' });
  let s;
  try {
    s = await stat(datadir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES') {
      throw new DbsError('PERMISSION_DENIED', `cannot read the datadir ${datadir} of ${what}`, {
        hint: "run dbs as the database's OS user (or root)",
      });
    }
    throw new DbsError('SOURCE_NOT_FOUND', `the datadir ${datadir} of ${what} does not exist on this host`, {
      hint: 'run dbs on the database host, or name the datadir with ?datadir=/path in the source URL',
    });
  }
  if (!s.isDirectory()) throw new DbsError('SOURCE_NOT_FOUND', `the datadir ${datadir} of ${what} is not a directory`);
  try {
    await readdir(datadir);
  } catch {
    throw new DbsError('PERMISSION_DENIED', `cannot read the datadir ${datadir} of ${what}`, {
      hint: "run dbs as the database's OS user (or root)",
    });
  }
  return datadir;
}

function checkToolFitsServer(tool: PhysicalTool, server: PhysicalServer, log: (l: string) => void): void {
  const tv = majorMinor(tool.serverVersion || tool.version);
  const sv = majorMinor(server.version);
  if (!tv || !sv || tv === sv) return;
  if (tool.kind === 'mariabackup') {
    throw new DbsError(
      'TOOL_MISSING',
      `${tool.name} ${tool.version} cannot back up MariaDB ${server.version}: the tool must be of the server's version (${sv})`,
      { hint: INSTALL_HINT.mariabackup, details: { tool: tool.name, toolVersion: tool.version, serverVersion: server.version } },
    );
  }
  // xtrabackup 8.0 backs up 8.0.x servers up to its own version; warn and let it decide.
  log(`warning: ${tool.name} ${tool.version} (for MySQL ${tool.serverVersion}) and the server (${server.version}) differ in version`);
}

/** Physical backups always copy the whole server. */
function checkSelection(sel: Selection): void {
  if (sel.databases.length > 0 || sel.tables.length > 0) {
    throw new DbsError('INVALID_ARGUMENT', 'physical and incremental backups copy the whole server; they cannot be limited to databases or tables', {
      hint: 'leave out --databases/--tables, or use --type logical for a selection',
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Probe

/** Probe for a physical plan: reachable, version, the tool, the datadir, the privileges. */
export async function probePhysical(source: Endpoint, selection: Selection, signal: AbortSignal): Promise<ProbeInfo> {
  const t = connTarget(source);
  const what = describeTarget(t);
  const problems: string[] = [];
  const warnings: string[] = [];
  try {
    checkSelection(selection);
  } catch (err) {
    problems.push(describeError(err));
  }
  const server = await readServer(t, signal);
  const grants = await withConnection(t, 'source', signal, (conn) => readGrants(conn, server.flavor));
  const kind = toolKindFor(server.flavor);
  let tool: PhysicalTool | undefined;
  try {
    tool = await resolvePhysicalTool(kind);
    checkToolFitsServer(tool, server, (l) => warnings.push(l.replace(/^warning: /, '')));
  } catch (err) {
    problems.push(describeError(err));
  }
  let datadir: string | undefined;
  try {
    datadir = await resolveDatadir(source, server, what);
  } catch (err) {
    problems.push(describeError(err));
  }
  const needed = server.flavor === 'mariadb' ? ['RELOAD', 'PROCESS'] : ['RELOAD', 'PROCESS', 'BACKUP_ADMIN'];
  const lacking = needed.filter((p) => !grants.hasGlobal(p));
  if (lacking.length > 0) problems.push(`the user ${what} lacks ${lacking.join(', ')} on *.* (the backup tool needs them)`);
  if (!grants.hasGlobal('LOCK TABLES')) warnings.push('the user lacks LOCK TABLES: non-InnoDB tables may not be copied consistently');
  if (!server.lsn) warnings.push('the server does not tell its current LSN: incrementals cannot check that they continue the chain');
  return {
    flavor: server.flavor,
    serverVersion: server.version,
    problems,
    facts: {
      logBin: server.logBin,
      datadir: datadir ?? server.datadir,
      server: server.identity,
      ...(tool ? { tool: tool.name, toolVersion: tool.version } : {}),
      ...(datadir ? { sizeBytes: datadirSize(datadir) } : {}),
      warnings,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Backup

export async function backupPhysical(req: BackupRequest, ctx: EngineRunContext): Promise<BackupOutcome> {
  const t = connTarget(req.source);
  const what = describeTarget(t);
  const secrets = [t.password];
  const log = (line: string): void => ctx.log(redactText(redactToolLine(line), secrets));
  if (ctx.signal.aborted) throw new DbsError('INTERRUPTED', `the backup of ${what} was interrupted`);
  checkSelection(req.selection);

  const incremental = req.type === 'incremental';
  if (incremental && !req.parent) {
    throw new DbsError('BACKUP_NOT_FOUND', `an incremental backup of ${what} needs a base backup, and there is none`, {
      hint: 'run the base plan first (a physical backup), or run this plan with --auto-full',
    });
  }

  const server = await readServer(t, ctx.signal);
  const datadir = await resolveDatadir(req.source, server, what);
  const kind = toolKindFor(server.flavor);
  const tool = await resolvePhysicalTool(kind);
  checkToolFitsServer(tool, server, log);
  const parentLsn = incremental && req.parent ? checkParent(req.parent, server, kind, what) : undefined;

  const targetDir = join(ctx.tmpDir, 'target');
  const lsnDir = join(ctx.tmpDir, 'lsn');
  await mkdir(targetDir, { recursive: true, mode: 0o700 });
  await mkdir(lsnDir, { recursive: true, mode: 0o700 });
  const sizeHint = datadirSize(datadir);
  log(
    `${tool.name} ${tool.version}: ${incremental ? `incremental backup from LSN ${parentLsn} (base ${req.parent?.id})` : 'full backup'} ` +
      `of ${server.flavor} ${server.version} at ${describeAddress(t)}, datadir ${datadir} (${sizeHint} bytes)`,
  );

  const optionFile = kind === 'mariabackup' ? await writeOptionFile(ctx.tmpDir, t) : await writeXtrabackupOptionFile(ctx.tmpDir, t);
  try {
    const args = buildBackupArgs({
      optionFile: optionFile.path,
      targetDir,
      lsnDir,
      datadir,
      ...(parentLsn !== undefined ? { incrementalLsn: parentLsn } : {}),
    });
    const sub = execa(tool.path, args, {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      encoding: 'buffer',
      reject: false,
      cancelSignal: ctx.signal,
      forceKillAfterDelay: 5_000,
      env: toolEnv(),
      extendEnv: false,
      cwd: ctx.tmpDir,
    });
    const stderr = collectStderr(sub, log);
    const exit: Promise<DumpExit> = (async () => {
      const r = await sub;
      await stderr.done;
      return {
        ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
        ...(r.signal ? { signal: r.signal } : {}),
        canceled: r.isCanceled || ctx.signal.aborted,
        ...(r.failed && r.exitCode === undefined ? { failureMessage: redactText(r.shortMessage ?? 'failed', secrets) } : {}),
      };
    })();
    const guard = new XbstreamGuard({ toolName: tool.name, exit, stderrTail: () => [...stderr.tail], what });
    pipeline(sub.stdout as Readable, guard).catch(() => undefined);

    try {
      await req.sink.write(PHYSICAL_ARTIFACT, guard, { extension: '.xbstream', ...(sizeHint > 0 ? { sizeHint } : {}) });
    } catch (err) {
      if (running(sub)) sub.kill('SIGKILL');
      guard.destroy();
      await exit;
      if (guard.failure) throw guard.failure;
      if (ctx.signal.aborted || isAbort(err)) {
        throw new DbsError('INTERRUPTED', `the backup of ${what} was interrupted`, { cause: err });
      }
      throw err;
    }
    const ex = await exit;
    // A sink that resolved without reading to the end (or despite a failed stream).
    const late = guard.failure ?? guard.check(ex);
    if (late) throw late;

    const parser = guard.parser;
    const checkpoints =
      parseCheckpoints(await readText(join(lsnDir, 'xtrabackup_checkpoints'))) ??
      parseCheckpoints(parser.file('xtrabackup_checkpoints')?.toString('utf8') ?? '');
    if (!checkpoints) {
      throw new DbsError('BACKUP_FAILED', `${tool.name} left no readable xtrabackup_checkpoints: the LSN range of the backup is unknown`, {
        details: { lsnDir },
      });
    }
    const expectedType = incremental ? 'incremental' : 'full-backuped';
    if (checkpoints.backupType !== expectedType || (parentLsn !== undefined && compareLsn(checkpoints.fromLsn, parentLsn) !== 0)) {
      throw new DbsError(
        'BACKUP_FAILED',
        `${tool.name} made a ${checkpoints.backupType} backup from LSN ${checkpoints.fromLsn}, not the ${expectedType} backup${parentLsn ? ` from LSN ${parentLsn}` : ''} that was asked for`,
      );
    }
    const info = parseKeyValues(
      (await readText(join(lsnDir, 'xtrabackup_info'))) || (parser.file('xtrabackup_info')?.toString('utf8') ?? ''),
    );
    const binlogFile = parser.file('mariadb_backup_binlog_info') ?? parser.file('xtrabackup_binlog_info');
    const binlog = parseBinlogPos(info['binlog_pos']) ?? (binlogFile ? parseBinlogInfoFile(binlogFile.toString('utf8')) : undefined);
    const innodb = parseBackupMyCnf(parser.file('backup-my.cnf')?.toString('utf8') ?? '');

    const facts: PhysicalBackupFacts = {
      flavor: server.flavor,
      backupKind: incremental ? 'incremental' : 'full',
      tool: kind,
      toolVersion: tool.version,
      serverVersion: info['server_version'] || server.version,
      lsn: { from: checkpoints.fromLsn, to: checkpoints.toLsn, last: checkpoints.lastLsn },
      ...(binlog ? { binlog } : {}),
      server: server.identity,
      innodb,
      ...(info['uuid'] ? { backupUuid: info['uuid'] } : {}),
      user: t.user,
      streamBytes: guard.bytes,
      files: parser.closed.size,
      ...(incremental && req.parent ? { parentId: req.parent.id } : {}),
    };
    if (parser.gaveUp) log(`note: the stream's framing was not followed to its end (${parser.gaveUp})`);
    log(
      `${incremental ? 'incremental' : 'full'} backup complete: ${guard.bytes} bytes, ${facts.files} files, LSN ${facts.lsn.from}..${facts.lsn.to} (last ${facts.lsn.last})` +
        (binlog ? `, binlog ${binlog.file}:${binlog.position}` : ''),
    );
    return {
      serverVersion: server.version,
      toolName: tool.kind,
      toolVersion: tool.version,
      facts: facts as unknown as Record<string, unknown>,
    };
  } finally {
    await optionFile.remove().catch(() => undefined);
    await rm(targetDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Checks that an incremental continues its parent on this server; returns the LSN to start from. */
function checkParent(parent: NonNullable<BackupRequest['parent']>, server: PhysicalServer, kind: PhysicalToolKind, what: string): string {
  const f = parent.facts;
  const lsn = (f['lsn'] ?? {}) as Record<string, unknown>;
  const to = lsnOf(lsn['to']);
  const last = lsnOf(lsn['last']) ?? to;
  if (!to) {
    throw new DbsError('REFUSED', `the base backup ${parent.id} has no LSN range: it is not a physical backup`, {
      hint: 'the base plan must make physical (or incremental) backups of the same server',
    });
  }
  const parentTool = typeof f['tool'] === 'string' ? f['tool'] : undefined;
  if (parentTool && parentTool !== kind) {
    throw new DbsError('REFUSED', `the base backup ${parent.id} was made with ${parentTool}, but ${what} needs ${kind}`, {
      hint: 'take a new full backup (run the base plan, or this plan with --auto-full)',
    });
  }
  const id = f['server'] as Partial<ServerIdentity> | undefined;
  if (id && typeof id === 'object' && id.fingerprint && id.fingerprint !== server.identity.fingerprint) {
    const diff = identityDiff(id, server.identity);
    throw new DbsError('REFUSED', `the base backup ${parent.id} is from another server than ${what}${diff.length ? ` (${diff.join(', ')})` : ''}`, {
      hint: 'an incremental backup must continue a chain of the same server: take a new full backup (run the base plan, or this plan with --auto-full)',
      details: { parent: id, server: server.identity },
    });
  }
  if (server.lsn && last && compareLsn(server.lsn, last) < 0) {
    throw new DbsError(
      'REFUSED',
      `the server's log sequence number ${server.lsn} is older than the base backup ${parent.id}'s (${last}): ${what} is not the server the base backup was taken of (it was replaced, re-initialised or restored from an older backup)`,
      {
        hint: 'take a new full backup (run the base plan, or this plan with --auto-full)',
        details: { serverLsn: server.lsn, parentLsn: last },
      },
    );
  }
  return to;
}

/** The option file for xtrabackup: its own group (it rejects some [client] options such as protocol). */
async function writeXtrabackupOptionFile(dir: string, t: ConnTarget): Promise<{ path: string; remove(): Promise<void> }> {
  const lines = ['[xtrabackup]', `user=${quoteOptionValue(t.user)}`];
  if (t.password) lines.push(`password=${quoteOptionValue(t.password.reveal())}`);
  if (t.socket) lines.push(`socket=${quoteOptionValue(t.socket)}`);
  else lines.push(`host=${quoteOptionValue(t.host)}`, `port=${t.port}`);
  const path = join(dir, `xtrabackup-${randomBytes(6).toString('hex')}.cnf`);
  await writeFile(path, lines.join('\n') + '\n', { mode: 0o600, flag: 'wx' });
  await chmod(path, 0o600);
  return { path, remove: () => rm(path, { force: true }) };
}

/** Total size of the regular files under dir (a size hint; stops after 200k entries). */
export function datadirSize(dir: string): number {
  let total = 0;
  let seen = 0;
  const stack = [dir];
  while (stack.length > 0 && seen < 200_000) {
    const d = stack.pop() as string;
    let entries: Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      seen++;
      const p = join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        try {
          total += lstatSync(p).size;
        } catch {
          // vanished
        }
      }
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Restore and prepare

interface Link {
  id: string;
  kind: 'full' | 'incremental';
  from?: string;
  to?: string;
  last?: string;
  tool: PhysicalToolKind;
  fingerprint?: string;
  artifact: ArtifactReader;
  facts: Record<string, unknown>;
}

function linksOf(req: Omit<RestoreRequest, 'target' | 'options'>, code: ErrorCode): Link[] {
  const chain: ChainLink[] = req.chain && req.chain.length > 0
    ? req.chain
    : [{ backupId: 'backup', type: req.type, facts: req.facts, artifacts: req.artifacts }];
  if (!req.chain?.length && req.type === 'incremental') {
    throw new DbsError(code, 'an incremental backup cannot be restored without its chain (the full backup and the incrementals before it)', {
      hint: 'this is a bug in the caller: pass the chain',
    });
  }
  return chain.map((c, i) => {
    const artifact = c.artifacts.find((a) => a.name === PHYSICAL_ARTIFACT) ?? (c.artifacts.length === 1 ? c.artifacts[0] : undefined);
    if (!artifact) {
      throw new DbsError(code, `backup ${c.backupId} has no "${PHYSICAL_ARTIFACT}" artifact`, {
        details: { artifacts: c.artifacts.map((a) => a.name) },
      });
    }
    const lsn = (c.facts['lsn'] ?? {}) as Record<string, unknown>;
    const kindFact = c.facts['backupKind'];
    const kind: Link['kind'] = kindFact === 'full' || kindFact === 'incremental' ? kindFact : c.type === 'incremental' ? 'incremental' : i === 0 ? 'full' : 'incremental';
    const from = lsnOf(lsn['from']);
    const to = lsnOf(lsn['to']);
    const last = lsnOf(lsn['last']);
    const server = c.facts['server'] as { fingerprint?: unknown } | undefined;
    const tool = c.facts['tool'] === 'xtrabackup' || c.facts['flavor'] === 'mysql' ? 'xtrabackup' : 'mariabackup';
    return {
      id: c.backupId,
      kind,
      ...(from ? { from } : {}),
      ...(to ? { to } : {}),
      ...(last ? { last } : {}),
      tool,
      ...(typeof server?.fingerprint === 'string' ? { fingerprint: server.fingerprint } : {}),
      artifact,
      facts: c.facts,
    };
  });
}

/** The chain must be: one full backup, then incrementals each starting where the previous ended. */
export function validateChain(links: Array<Pick<Link, 'id' | 'kind' | 'from' | 'to' | 'tool' | 'fingerprint'>>, code: ErrorCode): void {
  const first = links[0];
  if (!first) throw new DbsError(code, 'the backup chain is empty');
  if (first.kind !== 'full') {
    throw new DbsError(code, `the chain starts with ${first.id}, an incremental backup: its full backup is missing`, {
      hint: 'the base backup may have been deleted; restore another backup',
    });
  }
  for (let i = 1; i < links.length; i++) {
    const prev = links[i - 1] as (typeof links)[number];
    const cur = links[i] as (typeof links)[number];
    if (cur.kind !== 'incremental') throw new DbsError(code, `backup ${cur.id} in the middle of the chain is not an incremental backup`);
    if (cur.tool !== first.tool) throw new DbsError(code, `backup ${cur.id} was made with ${cur.tool}, the chain's full backup with ${first.tool}`);
    if (cur.fingerprint && first.fingerprint && cur.fingerprint !== first.fingerprint) {
      throw new DbsError(code, `backup ${cur.id} is of another server than the chain's full backup ${first.id}`);
    }
    if (cur.from && prev.to && compareLsn(cur.from, prev.to) !== 0) {
      throw new DbsError(
        code,
        `the chain is broken between ${prev.id} and ${cur.id}: ${cur.id} starts at LSN ${cur.from}, but ${prev.id} ends at ${prev.to}`,
        { hint: 'a backup of the chain is missing; restore an older backup', details: { chain: links.map((l) => ({ id: l.id, from: l.from, to: l.to })) } },
      );
    }
  }
}

interface Prepared {
  dir: string;
  bytes: number;
  checkpoints: Checkpoints;
  tool: PhysicalTool;
  /** [mysqld] settings of the full backup's backup-my.cnf. */
  settings: Record<string, string>;
  binlog?: BinlogFacts;
}

/** Extracts the chain into work/ and prepares it: the full backup, then each incremental in order. */
async function extractAndPrepare(
  links: Link[],
  work: string,
  ctx: EngineRunContext,
  log: (l: string) => void,
  code: ErrorCode,
): Promise<Prepared> {
  const first = links[0] as Link;
  const tool = await resolvePhysicalTool(first.tool);
  const backupVersion = typeof first.facts['toolVersion'] === 'string' ? first.facts['toolVersion'] : '';
  if (backupVersion && majorMinor(backupVersion) !== majorMinor(tool.version)) {
    log(`warning: the backup was made with ${first.tool} ${backupVersion}; preparing it with ${tool.version}`);
  }
  const base = join(work, 'base');
  let bytes = 0;
  for (let i = 0; i < links.length; i++) {
    const link = links[i] as Link;
    const dir = i === 0 ? base : join(work, `inc-${i}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const started = Date.now();
    const got = await extract(link, dir, tool, ctx, log, code);
    bytes += got.bytes;
    log(`extracted ${link.id} (${link.kind}, ${got.bytes} bytes) in ${Date.now() - started} ms`);
    const cp = got.checkpoints;
    const expectType = link.kind === 'full' ? 'full-backuped' : 'incremental';
    if (cp.backupType !== expectType) {
      throw new DbsError(code, `backup ${link.id} holds a ${cp.backupType} backup, not the ${link.kind} backup its manifest names`);
    }
    if ((link.to && compareLsn(cp.toLsn, link.to) !== 0) || (link.from && compareLsn(cp.fromLsn, link.from) !== 0)) {
      throw new DbsError(code, `backup ${link.id} holds LSNs ${cp.fromLsn}..${cp.toLsn}, but its manifest says ${link.from}..${link.to}`, {
        hint: 'the artifact does not belong to this backup',
      });
    }
    const last = i === links.length - 1;
    const t0 = Date.now();
    await runTool(tool.path, buildPrepareArgs(tool.kind, { targetDir: base, ...(i > 0 ? { incrementalDir: dir } : {}), last }), {
      ctx,
      log,
      code,
      what: `preparing ${link.id}${i > 0 ? ` (incremental ${i} of ${links.length - 1})` : ''}`,
      requireOk: true,
    });
    log(`prepared ${link.id} in ${Date.now() - t0} ms`);
    if (i > 0) await rm(dir, { recursive: true, force: true });
  }
  const checkpoints = parseCheckpoints(await readText(join(base, 'xtrabackup_checkpoints')));
  const lastLink = links.at(-1) as Link;
  if (!checkpoints) throw new DbsError(code, 'the prepared backup has no readable xtrabackup_checkpoints');
  if (lastLink.to && compareLsn(checkpoints.toLsn, lastLink.to) !== 0) {
    throw new DbsError(code, `the prepared backup ends at LSN ${checkpoints.toLsn}, not at ${lastLink.to} of ${lastLink.id}`);
  }
  const settings = parseBackupMyCnf(await readText(join(base, 'backup-my.cnf')));
  const lastBinlog = lastLink.facts['binlog'] as BinlogFacts | undefined;
  const binlogText = (await readText(join(base, 'mariadb_backup_binlog_info'))) || (await readText(join(base, 'xtrabackup_binlog_info')));
  const binlog = lastBinlog && typeof lastBinlog.file === 'string' ? lastBinlog : parseBinlogInfoFile(binlogText);
  return { dir: base, bytes, checkpoints, tool, settings, ...(binlog ? { binlog } : {}) };
}

/** Pipes a link's artifact into mbstream/xbstream -x -C dir. */
async function extract(
  link: Link,
  dir: string,
  tool: PhysicalTool,
  ctx: EngineRunContext,
  log: (l: string) => void,
  code: ErrorCode,
): Promise<{ bytes: number; checkpoints: Checkpoints }> {
  let input: Readable;
  try {
    input = await link.artifact.open();
  } catch (err) {
    throw new DbsError(code, `cannot open the artifact of backup ${link.id}: ${describeError(err)}`, { cause: err });
  }
  const r = await runTool(tool.stream.path, buildExtractArgs(dir), {
    ctx,
    log,
    code,
    what: `extracting ${link.id}`,
    input,
    inputName: `the artifact of backup ${link.id}`,
  });
  const checkpoints = parseCheckpoints(await readText(join(dir, 'xtrabackup_checkpoints')));
  if (!checkpoints) {
    throw new DbsError(code, `the artifact of backup ${link.id} holds no xtrabackup_checkpoints: it is incomplete or not a ${tool.kind} backup`, {
      hint: 'check the backup with `dbs backup verify`',
    });
  }
  return { bytes: r.bytesIn, checkpoints };
}

/** Restores a physical/incremental backup (its chain) into an empty datadir; optionally starts a server. */
export async function restorePhysical(req: RestoreRequest, ctx: EngineRunContext): Promise<RestoreOutcome> {
  const log = (line: string): void => ctx.log(redactToolLine(line));
  const code: ErrorCode = 'RESTORE_FAILED';
  if (ctx.signal.aborted) throw new DbsError('INTERRUPTED', 'the restore was interrupted');
  const toDatadirOpt = req.options.toDatadir;
  if (!toDatadirOpt) {
    throw new DbsError('INVALID_ARGUMENT', 'a physical backup is restored into a datadir: give --to-datadir DIR (a missing or empty directory)', {
      hint: 'the files can then be used by a server (--start --port N starts one on them)',
    });
  }
  const toDatadir = resolve(toDatadirOpt);
  const links = linksOf(req, code);
  validateChain(links, code);
  await checkEmptyTarget(toDatadir, ctx.tmpDir);
  const port = req.options.start?.port;
  if (port !== undefined) await checkPortFree(port);

  const work = join(ctx.tmpDir, 'chain');
  await mkdir(work, { recursive: true, mode: 0o700 });
  try {
    const prepared = await extractAndPrepare(links, work, ctx, log, code);
    await checkEmptyTarget(toDatadir, ctx.tmpDir); // nothing may have appeared meanwhile
    const t0 = Date.now();
    await runTool(prepared.tool.path, buildMoveBackArgs({ targetDir: prepared.dir, datadir: toDatadir }), {
      ctx,
      log,
      code,
      what: `moving the prepared files into ${toDatadir}`,
      requireOk: true,
    });
    log(`moved the prepared backup into ${toDatadir} in ${Date.now() - t0} ms`);
    const lastLink = links.at(-1) as Link;
    const facts: Record<string, unknown> = {
      datadir: toDatadir,
      chain: links.map((l) => l.id),
      lsn: { to: prepared.checkpoints.toLsn, last: prepared.checkpoints.lastLsn },
      ...(prepared.binlog ? { binlog: prepared.binlog } : {}),
      tool: prepared.tool.kind,
      toolVersion: prepared.tool.version,
    };
    const owner = safeUser();
    if (port !== undefined) {
      const user = typeof lastLink.facts['user'] === 'string' ? lastLink.facts['user'] : 'root';
      const started = await startServer(toDatadir, port, prepared, user, ctx, log);
      Object.assign(facts, { started: true, ...started });
    } else if (owner === 'root') {
      log(`the files in ${toDatadir} belong to root: chown -R mysql:mysql ${toDatadir} before a system server uses them`);
    }
    return { bytes: prepared.bytes, facts };
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Extracts and prepares a chain in the scratch dir: proves the backup restorable. */
export async function verifyPreparePhysical(
  req: Omit<RestoreRequest, 'target' | 'options'>,
  ctx: EngineRunContext,
): Promise<{ facts: Record<string, unknown> }> {
  const log = (line: string): void => ctx.log(redactToolLine(line));
  const code: ErrorCode = 'VERIFY_FAILED';
  if (ctx.signal.aborted) throw new DbsError('INTERRUPTED', 'the verification was interrupted');
  const links = linksOf(req, code);
  validateChain(links, code);
  const work = join(ctx.tmpDir, 'verify-chain');
  await mkdir(work, { recursive: true, mode: 0o700 });
  try {
    const t0 = Date.now();
    const prepared = await extractAndPrepare(links, work, ctx, log, code);
    return {
      facts: {
        prepared: true,
        chain: links.map((l) => l.id),
        lsn: { to: prepared.checkpoints.toLsn, last: prepared.checkpoints.lastLsn },
        bytes: prepared.bytes,
        tool: prepared.tool.kind,
        toolVersion: prepared.tool.version,
        ms: Date.now() - t0,
      },
    };
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function checkEmptyTarget(dir: string, scratch: string): Promise<void> {
  const rel = resolve(dir);
  if (rel === '/' || rel.startsWith(resolve(scratch) + '/') || rel === resolve(scratch)) {
    throw new DbsError('INVALID_PATH', `cannot restore into ${dir}`);
  }
  let entries: string[];
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) {
      throw new DbsError('ALREADY_EXISTS', `${dir} exists and is not a directory`, { hint: 'give a missing or empty directory with --to-datadir' });
    }
    entries = await readdir(dir);
  } catch (err) {
    if (err instanceof DbsError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    throw new DbsError('IO_ERROR', `cannot read ${dir}: ${describeError(err)}`, { cause: err });
  }
  if (entries.length > 0) {
    throw new DbsError('ALREADY_EXISTS', `the target datadir ${dir} is not empty (${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')})`, {
      hint: 'give a missing or empty directory with --to-datadir; dbs never overwrites a datadir',
      details: { entries: entries.length },
    });
  }
}

async function checkPortFree(port: number): Promise<void> {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DbsError('INVALID_ARGUMENT', `--port must be a TCP port (1-65535), not ${port}`);
  }
  await new Promise<void>((ok, fail) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      fail(
        err.code === 'EADDRINUSE'
          ? new DbsError('IN_USE', `port ${port} on 127.0.0.1 is in use`, { hint: 'choose another --port' })
          : new DbsError('INVALID_ARGUMENT', `cannot use port ${port}: ${err.message}`),
      );
    });
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => ok()));
  });
}

// ---------------------------------------------------------------------------------------------
// Starting a server on the restored datadir

interface StartedServer {
  port: number;
  pid: number;
  socket: string;
  pidFile: string;
  errorLog: string;
  server: string;
  connect: string;
  stop: string;
}

async function startServer(
  datadir: string,
  port: number,
  prepared: Prepared,
  user: string,
  ctx: EngineRunContext,
  log: (l: string) => void,
): Promise<StartedServer> {
  const kind = prepared.tool.kind;
  const bin = await findFirst(TOOL_NAMES[kind].server, SERVER_DIRS);
  if (!bin) {
    throw new DbsError('TOOL_MISSING', `${TOOL_NAMES[kind].server.join(' or ')} was not found: cannot start a server on ${datadir}`, {
      hint: kind === 'mariabackup' ? 'install mariadb-server of the backup\'s version' : 'install mysql-server of the backup\'s version',
      details: { datadir },
    });
  }
  await checkPortFree(port);
  // A unix socket path is limited to 107 bytes.
  let socket = join(datadir, 'mysqld.sock');
  if (Buffer.byteLength(socket) > 100) socket = join(tmpdir(), `dbs-mysqld-${port}.sock`);
  const pidFile = join(datadir, 'mysqld.pid');
  const errorLog = join(datadir, 'mysqld.err');
  const osUser = safeUser();
  const args = buildServerArgs({
    kind,
    datadir,
    port,
    socket,
    pidFile,
    errorLog,
    ...(process.getuid?.() === 0 ? { user: osUser } : {}),
    settings: prepared.settings,
  });
  log(`starting ${bin.name} on ${datadir}, port ${port}`);
  // Detached in its own session, no inherited descriptors: it outlives dbs.
  const out = openSync('/dev/null', 'r+');
  let child: ChildProcess;
  try {
    child = spawn(bin.path, args, { detached: true, stdio: [out, out, out], env: toolEnv(), cwd: datadir });
  } finally {
    closeSync(out);
  }
  let exited: string | undefined;
  child.on('error', (e) => (exited ??= describeError(e)));
  child.on('exit', (c, s) => (exited ??= s ? `killed by ${s}` : `exited with code ${c}`));
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new DbsError('RESTORE_FAILED', `could not start ${bin.name}`);
  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  const stopIt = (): void => {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
  };
  for (;;) {
    if (exited) {
      throw new DbsError('RESTORE_FAILED', `the server on the restored datadir ${datadir} did not start: ${bin.name} ${exited}`, {
        hint: `the files are restored; see ${errorLog}`,
        details: { errorLogTail: (await readText(errorLog)).split('\n').slice(-15) },
      });
    }
    if (ctx.signal.aborted) {
      stopIt();
      throw new DbsError('INTERRUPTED', `starting the server on ${datadir} was interrupted; it was stopped`);
    }
    if (Date.now() > deadline) {
      stopIt();
      throw new DbsError('RESTORE_FAILED', `the server on ${datadir} did not accept connections within ${SERVER_START_TIMEOUT_MS / 1000} s; it was stopped`, {
        hint: `the files are restored; see ${errorLog}`,
      });
    }
    if (await greets(port)) break;
    await sleep(100);
  }
  const clientName = kind === 'mariabackup' ? 'mariadb' : 'mysql';
  log(`${bin.name} (pid ${pid}) accepts connections on 127.0.0.1:${port}`);
  return {
    port,
    pid,
    socket,
    pidFile,
    errorLog,
    server: bin.path,
    connect: `${clientName} -h 127.0.0.1 -P ${port} -u ${user} -p`,
    stop: `kill ${pid}`,
  };
}

/** True when a server on 127.0.0.1:port sends its first packet (the handshake, or an error packet). */
function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    const done = (v: boolean): void => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(2_000, () => done(false));
    sock.once('data', () => done(true));
    sock.once('error', () => done(false));
    sock.once('close', () => done(false));
  });
}

// ---------------------------------------------------------------------------------------------
// Running the tools

interface RunOptions {
  ctx: EngineRunContext;
  log: (l: string) => void;
  code: ErrorCode;
  /** "preparing X": what messages name. */
  what: string;
  /** A stream to feed into the tool's stdin. */
  input?: Readable;
  inputName?: string;
  /** The log must end with "completed OK!" (mariabackup/xtrabackup). */
  requireOk?: boolean;
}

/** Runs one tool to completion; throws (code) unless it exited 0 (and said "completed OK!"). */
async function runTool(path: string, args: string[], o: RunOptions): Promise<{ bytesIn: number; tail: string[] }> {
  const { ctx, log, code, what } = o;
  const sub = execa(path, args, {
    stdin: o.input ? 'pipe' : 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    encoding: 'buffer',
    reject: false,
    cancelSignal: ctx.signal,
    forceKillAfterDelay: 5_000,
    env: toolEnv(),
    extendEnv: false,
    cwd: ctx.tmpDir,
  });
  const stderr = collectStderr(sub, log, sub.stdout as Readable | null);
  const counter = new ByteCounter();
  let inputError: unknown;
  let piping: Promise<unknown> = Promise.resolve(undefined);
  if (o.input) {
    const stdin = sub.stdin;
    if (!stdin) throw new DbsError('INTERNAL', 'the tool has no stdin');
    // A broken input must stop the tool before its stdin closes: it would take a cut stream
    // for the whole. These listeners run before pipeline's own.
    const onInputError = (err: unknown): void => {
      // EPIPE and friends are the consequence of a tool that exited, not a broken input.
      if (isPipeConsequence(err)) return;
      inputError ??= err;
      if (running(sub)) sub.kill('SIGKILL');
    };
    o.input.once('error', onInputError);
    counter.once('error', onInputError);
    piping = pipeline(o.input, counter, stdin).then(
      () => undefined,
      (err: unknown) => err,
    );
  }
  const r = await sub;
  await stderr.done;
  const pipeErr = await piping;
  const tail = [...stderr.tail];
  const details = {
    tool: path,
    ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    ...(r.signal ? { signal: r.signal } : {}),
    stderrTail: tail,
    ...(o.input ? { bytesIn: counter.bytes } : {}),
  };
  if (r.isCanceled || ctx.signal.aborted) {
    throw new DbsError('INTERRUPTED', `${what} was interrupted`, { details });
  }
  if (inputError !== undefined) {
    throw new DbsError(code, `${what}: reading ${o.inputName ?? 'the input'} failed after ${counter.bytes} bytes: ${describeError(inputError)}`, {
      cause: inputError,
      hint: 'the stored backup is damaged or unreadable: check it with `dbs backup verify`',
      details,
    });
  }
  const lastErr = toolErrorLines(tail).at(-1) ?? tail.at(-1);
  if (r.exitCode !== 0 || r.signal) {
    const how = r.signal ? `was killed by ${r.signal}` : `exited with code ${r.exitCode ?? 'unknown'}`;
    throw new DbsError(code, `${what} failed: ${path.split('/').pop()} ${how}${lastErr ? `: ${lastErr}` : ''}`, {
      hint: o.input ? 'the stored backup is damaged or incomplete: check it with `dbs backup verify`' : backupHint(tail),
      details,
    });
  }
  if (o.requireOk && !completedOk(tail)) {
    throw new DbsError(code, `${what} failed: the tool's log does not end with "completed OK!"${lastErr ? `: ${lastErr}` : ''}`, { details });
  }
  if (pipeErr !== undefined && o.input) {
    throw new DbsError(code, `${what} failed: ${describeError(pipeErr)}`, { cause: pipeErr, details });
  }
  return { bytesIn: counter.bytes, tail };
}

function isPipeConsequence(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ERR_STREAM_DESTROYED' || code === 'ECONNRESET';
}

function running(sub: ResultPromise): boolean {
  const cp = sub as unknown as ChildProcess;
  return cp.exitCode === null && cp.signalCode === null;
}

/** Noise of mariabackup's log: the "...done" after each file. */
const NOISE = /^\[\d+\] [\d-]+ [\d:]+\s+\.\.\.done$/;

/**
 * Reads a tool's stderr (and optionally stdout: mbstream and prepare print there) line by line:
 * each line to the log, the last lines kept. Lines are redacted by the caller's log().
 */
function collectStderr(
  sub: ResultPromise,
  log: (line: string) => void,
  also?: Readable | null,
): { tail: string[]; done: Promise<void> } {
  const tail: string[] = [];
  const read = async (stream: Readable | null | undefined): Promise<void> => {
    if (!stream) return;
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    for await (const raw of rl) {
      const line = redactToolLine(raw.replace(/\s+$/, ''));
      if (!line || NOISE.test(line)) continue;
      log(line);
      tail.push(line);
      if (tail.length > STDERR_TAIL_LINES) tail.shift();
    }
  };
  const done = Promise.all([read(sub.stderr as Readable | null), read(also)]).then(
    () => undefined,
    () => undefined,
  );
  return { tail, done };
}

class ByteCounter extends Transform {
  bytes = 0;
  constructor() {
    super({ highWaterMark: 1024 * 1024 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'] ?? 'root';
  }
}
