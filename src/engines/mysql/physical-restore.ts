// Restoring MySQL/MariaDB physical and incremental backups: extract the chain (mbstream /
// xbstream), prepare it (the full backup, then each incremental in order), move the files into
// an empty datadir and optionally start a server on it. verify --prepare stops after preparing.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, statfs } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { DbsError, describeError, type ErrorCode } from '../../errors.js';
import type { ArtifactReader, ChainLink, EngineRunContext, RestoreOutcome } from '../types.js';
import type { MysqlRestoreRequest, MysqlVerifyRequest } from './types.js';
import { toolEnv } from './conn.js';
import type { BinlogFacts } from './dump.js';
import {
  buildExtractArgs,
  buildMoveBackArgs,
  buildPrepareArgs,
  buildServerArgs,
  compareLsn,
  lsnOf,
  majorMinor,
  parseBackupMyCnf,
  parseBinlogInfoFile,
  parseCheckpoints,
  PHYSICAL_ARTIFACT,
  redactToolLine,
  TOOL_NAMES,
  type Checkpoints,
  type PhysicalToolKind,
} from './physical-files.js';
import { findFirst, readText, resolvePhysicalTool, runTool, safeUser, SERVER_DIRS, type PhysicalTool } from './physical-run.js';

const SERVER_START_TIMEOUT_MS = 600_000;

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

function linksOf(req: MysqlVerifyRequest, code: ErrorCode): Link[] {
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
export async function restorePhysical(req: MysqlRestoreRequest, ctx: EngineRunContext): Promise<RestoreOutcome> {
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

  // The chain is extracted and prepared next to the target when possible: on the same file
  // system --move-back is a rename (no second copy, no scratch the size of the database on
  // /tmp). Otherwise in the scratch dir.
  const work = await makeWorkDir(toDatadir, ctx.tmpDir);
  try {
    await checkSpace(links, work, code);
    const prepared = await extractAndPrepare(links, work, ctx, log, code);
    await checkEmptyTarget(toDatadir, ctx.tmpDir); // nothing may have appeared meanwhile
    await mkdir(toDatadir, { recursive: true, mode: 0o750 });
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
  req: MysqlVerifyRequest,
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
    await checkSpace(links, work, code);
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

/** A 0700 work dir beside the target (same file system), else in the scratch dir. */
async function makeWorkDir(toDatadir: string, scratch: string): Promise<string> {
  const parent = dirname(toDatadir);
  try {
    await mkdir(parent, { recursive: true });
    return await mkdtemp(join(parent, `.dbs-restore-${basename(toDatadir)}-`));
  } catch {
    const work = join(scratch, 'chain');
    await mkdir(work, { recursive: true, mode: 0o700 });
    return work;
  }
}

/**
 * Preparing needs the full backup and (one at a time) each incremental extracted: refuse early
 * when the file system clearly lacks that much room, instead of failing an hour in.
 */
async function checkSpace(links: Link[], dir: string, code: ErrorCode): Promise<void> {
  const full = links[0]?.artifact.rawBytes ?? 0;
  const inc = Math.max(0, ...links.slice(1).map((l) => l.artifact.rawBytes));
  const need = full + inc;
  if (!(need > 0)) return;
  let free: number;
  try {
    const s = await statfs(dir);
    free = Number(s.bavail) * Number(s.bsize);
  } catch {
    return;
  }
  if (free < need) {
    throw new DbsError(code, `not enough free space in ${dir}: the chain needs about ${need} bytes there, ${free} are free`, {
      hint: 'free some space, or point the scratch directory (and the target) at a bigger file system',
      details: { need, free, dir },
    });
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
    // Meant to outlive dbs: no death signal, no child marker (recovery must leave it alone).
    child = spawn(bin.path, args, { detached: true, stdio: [out, out, out], env: toolEnv({ outlivesDbs: true }), cwd: datadir });
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
