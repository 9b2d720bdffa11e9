// MySQL/MariaDB physical and incremental backups with mariabackup (MariaDB) or xtrabackup
// (MySQL): `--backup --stream=xbstream` of the whole server into ONE artifact ("backup",
// .xbstream); incrementals copy the pages newer than the parent's to_lsn. Restores live in
// physical-restore.ts, the tools in physical-run.ts, argv and metadata files in
// physical-files.ts, the stream check in physical-stream.ts.
//
// The backup tool reads the server's data files directly: it must run on the database host,
// with --datadir of that server. Secrets reach it through a 0600 option file only.
import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, type Dirent } from 'node:fs';
import { chmod, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join, resolve } from 'node:path';
import { DbsError, describeError } from '../../errors.js';
import { redactText } from '../../secret.js';
import type { Egress, Endpoint, EngineRunContext, ProbeInfo } from '../types.js';
import type { MysqlBackupOutcome, MysqlBackupRequest, MysqlSelection, PhysicalBackupFacts } from './types.js';
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
} from './conn.js';
import { spawnStreamingTool, storeToolOutput } from '../tool-stream.js';
import {
  buildBackupArgs,
  compareLsn,
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
  PHYSICAL_ARTIFACT,
  redactToolLine,
  serverIdentity,
  toolKindFor,
  type PhysicalToolKind,
  type ServerIdentity,
} from './physical-files.js';
import { cleanToolLine, readText, resolvePhysicalTool, type PhysicalTool } from './physical-run.js';
import { XbstreamGuard } from './physical-stream.js';
import { readGrants } from './schema.js';

export { PHYSICAL_ARTIFACT } from './physical-files.js';
export { listPhysicalTools } from './physical-run.js';
export { restorePhysical, verifyPreparePhysical } from './physical-restore.js';

export type { PhysicalBackupFacts };

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
function checkSelection(sel: MysqlSelection): void {
  if (sel.databases.length > 0 || sel.tables.length > 0) {
    throw new DbsError('INVALID_ARGUMENT', 'physical and incremental backups copy the whole server; they cannot be limited to databases or tables', {
      hint: 'leave out --databases/--tables, or use --type logical for a selection',
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Probe

/** Probe for a physical plan: reachable, version, the tool, the datadir, the privileges. */
export async function probePhysical(source: Endpoint, selection: MysqlSelection, signal: AbortSignal, egress?: Egress): Promise<ProbeInfo> {
  const t = connTarget(source, egress);
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

export async function backupPhysical(req: MysqlBackupRequest, ctx: EngineRunContext): Promise<MysqlBackupOutcome> {
  const t = connTarget(req.source, ctx.egress);
  const what = describeTarget(t);
  const secrets = [t.password];
  const log = (line: string): void => ctx.log(redactText(redactToolLine(line), secrets));
  if (ctx.signal.aborted) throw new DbsError('INTERRUPTED', `the backup of ${what} was interrupted`);
  if (t.localAddress) log(`mariabackup/xtrabackup cannot bind to the gateway address ${t.localAddress}: its connection leaves from this host's default address (dbs's own connections leave from ${t.localAddress})`);
  checkSelection(req.selection);

  const incremental = req.type === 'incremental';
  if (incremental && !req.parent) {
    throw new DbsError('BACKUP_FAILED', `an incremental backup of ${what} needs a base backup, and there is none`, {
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
    // mariabackup ignores SIGTERM (and SIGHUP): it finishes the whole backup first. SIGINT stops it.
    // The guard reads the stream's end only (edges): its trailer files and the framing.
    const { guard } = await storeToolOutput(
      req.sink,
      PHYSICAL_ARTIFACT,
      { extension: '.xbstream', guard: 'edges', parallelCompression: true, ...(sizeHint > 0 ? { sizeHint } : {}) },
      (stdout) => {
        const tool_ = spawnStreamingTool(tool.path, args, { stdout, signal: ctx.signal, env: toolEnv(), log, secrets, killSignal: 'SIGINT', cwd: ctx.tmpDir, clean: cleanToolLine });
        return { tool: tool_, guard: new XbstreamGuard({ toolName: tool.name, exit: tool_.exit, stderrTail: () => [...tool_.stderr.tail], what }) };
      },
      { signal: ctx.signal, what },
    );

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
      ...(guard.sawAll ? { files: parser.closed.size } : {}),
      ...(incremental && req.parent ? { parentId: req.parent.id } : {}),
    };
    if (parser.gaveUp) log(`note: the stream's framing was not followed to its end (${parser.gaveUp})`);
    log(
      `${incremental ? 'incremental' : 'full'} backup complete: ${guard.bytes} bytes${facts.files !== undefined ? `, ${facts.files} files` : ''}, LSN ${facts.lsn.from}..${facts.lsn.to} (last ${facts.lsn.last})` +
        (binlog ? `, binlog ${binlog.file}:${binlog.position}` : ''),
    );
    return {
      serverVersion: server.version,
      toolName: tool.kind,
      toolVersion: tool.version,
      facts,
    };
  } finally {
    await optionFile.remove().catch(() => undefined);
    await rm(targetDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Checks that an incremental continues its parent on this server; returns the LSN to start from. */
function checkParent(parent: NonNullable<MysqlBackupRequest['parent']>, server: PhysicalServer, kind: PhysicalToolKind, what: string): string {
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
