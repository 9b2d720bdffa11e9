// Physical MySQL/MariaDB backups: finding mariabackup/xtrabackup (and mbstream/xbstream, the
// server binaries) and running them to completion with their log checked.
import { readFile, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Readable } from 'node:stream';
import { execaChild } from '../../pipeline/child.js';
import { DbsError, describeError, type ErrorCode } from '../../errors.js';
import type { EngineRunContext, ToolInfo } from '../types.js';
import { toolEnv } from './conn.js';
import { versionOutput } from '../../pipeline/child.js';
import { ByteCounter, collectStderr, feedStdin } from '../tool-stream.js';
import {
  completedOk,
  INSTALL_HINT,
  parsePhysicalToolVersion,
  redactToolLine,
  TOOL_NAMES,
  toolErrorLines,
  type PhysicalToolKind,
} from './physical-files.js';
import { backupHint } from './physical-stream.js';


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

export const SERVER_DIRS = ['/usr/sbin', '/usr/libexec', '/usr/local/sbin', '/usr/local/mysql/bin', '/opt/mysql/bin'];

async function toolVersion(path: string): Promise<{ version: string; server: string }> {
  const v = parsePhysicalToolVersion(await versionOutput(path, toolEnv()));
  return { version: v.version, server: v.server };
}

export async function findFirst(names: string[], extraDirs: string[] = []): Promise<{ name: string; path: string } | undefined> {
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
// Running the tools

export interface RunOptions {
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
export async function runTool(path: string, args: string[], o: RunOptions): Promise<{ bytesIn: number; tail: string[] }> {
  const { ctx, log, code, what } = o;
  const sub = execaChild(path, args, {
    stdin: o.input ? 'pipe' : 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    encoding: 'buffer',
    reject: false,
    cancelSignal: ctx.signal,
    // mariabackup ignores SIGTERM (and SIGHUP); SIGINT stops it at once.
    killSignal: 'SIGINT',
    forceKillAfterDelay: 5_000,
    env: toolEnv(),
    extendEnv: false,
    cwd: ctx.tmpDir,
  });
  const stderr = collectStderr(sub, log, { also: sub.stdout as Readable | null, clean: cleanToolLine });
  const feed = o.input ? feedStdin(sub, o.input) : undefined;
  const counter = feed?.counter ?? new ByteCounter();
  const piping: Promise<unknown> = feed?.piping ?? Promise.resolve(undefined);
  const r = await sub;
  await stderr.done;
  const pipeErr = await piping;
  const inputError = feed?.inputError();
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



/** Noise of mariabackup's log: the "...done" after each file. */
const NOISE = /^\[\d+\] [\d-]+ [\d:]+\s+\.\.\.done$/;

/**
 * Reads a tool's stderr (and optionally stdout: mbstream and prepare print there) line by line:
 * each line to the log, the last lines kept. Lines are redacted by the caller's log().
 */
/** Redacts a tool log line and drops progress noise ('' drops it). */
export function cleanToolLine(line: string): string {
  const l = redactToolLine(line);
  return NOISE.test(l) ? '' : l;
}


export async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

export function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'] ?? 'root';
  }
}
