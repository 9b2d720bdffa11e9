// Physical MySQL/MariaDB backups, the pure parts: argv of mariabackup / xtrabackup / mbstream /
// xbstream / mariadbd, the metadata files a backup writes (xtrabackup_checkpoints,
// xtrabackup_info, backup-my.cnf, xtrabackup_binlog_info), LSN arithmetic and the server
// identity that keeps an incremental chain on one server. No I/O here.
import { createHash } from 'node:crypto';
import type { MysqlFlavor } from './conn.js';
import type { BinlogFacts } from './dump.js';

/** The artifact name of a physical or incremental backup: one xbstream. */
export const PHYSICAL_ARTIFACT = 'backup';

/** The backup tool family: MariaDB's mariabackup (+ mbstream) or Percona's xtrabackup (+ xbstream). */
export type PhysicalToolKind = 'mariabackup' | 'xtrabackup';

export function toolKindFor(flavor: MysqlFlavor): PhysicalToolKind {
  return flavor === 'mariadb' ? 'mariabackup' : 'xtrabackup';
}

/** Names to look for on PATH, best first. MariaDB 10.5+ installs mariadb-backup (+ the old symlink). */
export const TOOL_NAMES: Record<PhysicalToolKind, { backup: string[]; stream: string[]; server: string[] }> = {
  mariabackup: { backup: ['mariadb-backup', 'mariabackup'], stream: ['mbstream'], server: ['mariadbd', 'mysqld'] },
  xtrabackup: { backup: ['xtrabackup'], stream: ['xbstream'], server: ['mysqld'] },
};

export const INSTALL_HINT: Record<PhysicalToolKind, string> = {
  mariabackup: 'install mariadb-backup of the server\'s version (Debian/Ubuntu: apt-get install mariadb-backup)',
  xtrabackup:
    'install Percona XtraBackup of the server\'s major version (e.g. percona-xtrabackup-80 for MySQL 8.0, percona-xtrabackup-84 for 8.4)',
};

/**
 * Parses `--version` output:
 *   "mariabackup based on MariaDB server 10.11.19-MariaDB debian-linux-gnu (x86_64)"
 *   "xtrabackup version 8.0.35-30 based on MySQL server 8.0.35 Linux (x86_64) (revision id: ..)"
 * `version` is the tool's own version, `server` the server version it was built from (what
 * decides which servers it can back up).
 */
export function parsePhysicalToolVersion(out: string): { version: string; server: string; line: string } {
  const line = (out.split('\n').find((l) => /based on|version|Ver\b/i.test(l)) ?? out.split('\n')[0] ?? '').trim();
  const server = /server\s+(\d[^\s,]*)/i.exec(line)?.[1] ?? '';
  const version = /version\s+(\d[^\s,]*)/i.exec(line)?.[1] ?? server;
  return { version, server, line };
}

/** "10.11" of "10.11.19-MariaDB-0+deb12u1-log". */
export function majorMinor(v: string): string {
  const m = /(\d+)\.(\d+)/.exec(v);
  return m ? `${m[1]}.${m[2]}` : '';
}

// ---------------------------------------------------------------------------------------------
// argv. The option file (or --no-defaults) must be the FIRST argument: both tools read option
// files before anything else, and with it no /etc/mysql/*.cnf or ~/.my.cnf gets in.

export interface BackupArgsOptions {
  optionFile: string;
  targetDir: string;
  lsnDir: string;
  datadir: string;
  /** For incrementals: copy only pages newer than this LSN (the parent's to_lsn). */
  incrementalLsn?: string;
  parallel?: number;
}

export function buildBackupArgs(o: BackupArgsOptions): string[] {
  const args = [
    `--defaults-file=${o.optionFile}`,
    '--backup',
    '--stream=xbstream',
    `--target-dir=${o.targetDir}`,
    `--extra-lsndir=${o.lsnDir}`,
    `--datadir=${o.datadir}`,
  ];
  if (o.incrementalLsn !== undefined) args.push(`--incremental-lsn=${o.incrementalLsn}`);
  if (o.parallel && o.parallel > 1) args.push(`--parallel=${o.parallel}`);
  return args;
}

/**
 * One prepare step. mariabackup (10.2+): plain --prepare for the full backup and for each
 * incremental in order (--apply-log-only is neither needed nor supported: prepare never rolls
 * back, the server does that when it starts). xtrabackup: --apply-log-only on every step but
 * the last, or later incrementals can no longer be applied.
 */
export function buildPrepareArgs(
  kind: PhysicalToolKind,
  o: { targetDir: string; incrementalDir?: string; last: boolean; useMemory?: string },
): string[] {
  const args = ['--no-defaults', '--prepare', `--target-dir=${o.targetDir}`];
  if (o.incrementalDir !== undefined) args.push(`--incremental-dir=${o.incrementalDir}`);
  if (kind === 'xtrabackup' && !o.last) args.push('--apply-log-only');
  if (o.useMemory) args.push(`--use-memory=${o.useMemory}`);
  return args;
}

/** Moves the prepared files into the new datadir (renames when both are on one file system). */
export function buildMoveBackArgs(o: { targetDir: string; datadir: string }): string[] {
  return ['--no-defaults', '--move-back', `--target-dir=${o.targetDir}`, `--datadir=${o.datadir}`];
}

export function buildExtractArgs(dir: string): string[] {
  return ['-x', '-C', dir];
}

/** InnoDB settings of backup-my.cnf that a server on the restored datadir must share. */
const SERVER_SETTINGS: Record<PhysicalToolKind, string[]> = {
  mariabackup: ['innodb_page_size', 'innodb_data_file_path', 'innodb_undo_tablespaces', 'innodb_log_file_size'],
  xtrabackup: ['innodb_page_size', 'innodb_data_file_path', 'innodb_undo_tablespaces'],
};

export interface ServerArgsOptions {
  kind: PhysicalToolKind;
  datadir: string;
  port: number;
  socket: string;
  pidFile: string;
  errorLog: string;
  /** OS user to run as, when dbs runs as root (mariadbd/mysqld refuse root without --user). */
  user?: string;
  /** [mysqld] settings from the backup's backup-my.cnf. */
  settings: Record<string, string>;
}

/**
 * A server on a restored datadir: loopback only, no option files, replication not started (a
 * copy of a replica must not start pulling from its source), binlog off (the default without
 * option files).
 */
export function buildServerArgs(o: ServerArgsOptions): string[] {
  const args = [
    '--no-defaults',
    `--datadir=${o.datadir}`,
    `--port=${o.port}`,
    '--bind-address=127.0.0.1',
    `--socket=${o.socket}`,
    `--pid-file=${o.pidFile}`,
    `--log-error=${o.errorLog}`,
    '--skip-slave-start',
  ];
  if (o.user) args.push(`--user=${o.user}`);
  if (o.kind === 'xtrabackup') args.push('--mysqlx=OFF'); // X plugin would take port 33060
  for (const key of SERVER_SETTINGS[o.kind]) {
    const v = o.settings[key];
    if (v !== undefined && /^[\w:;.+/-]+$/.test(v)) args.push(`--${key.replace(/_/g, '-')}=${v}`);
  }
  return args;
}

// ---------------------------------------------------------------------------------------------
// Metadata files

/** `key = value` lines (xtrabackup_checkpoints, xtrabackup_info). */
export function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_]+)\s*=\s?(.*?)\s*$/.exec(raw);
    if (m) out[m[1] as string] = m[2] as string;
  }
  return out;
}

export interface Checkpoints {
  /** full-backuped | incremental | log-applied | full-prepared */
  backupType: string;
  fromLsn: string;
  toLsn: string;
  lastLsn: string;
}

export function parseCheckpoints(text: string): Checkpoints | undefined {
  const kv = parseKeyValues(text);
  const { backup_type: backupType, from_lsn: fromLsn, to_lsn: toLsn, last_lsn: lastLsn } = kv;
  if (!backupType || !isLsn(fromLsn) || !isLsn(toLsn)) return undefined;
  return { backupType, fromLsn, toLsn, lastLsn: isLsn(lastLsn) ? lastLsn : toLsn };
}

/**
 * xtrabackup_info's binlog_pos:
 *   "filename 'mysql-bin.000001', position '882', GTID of the last change '0-1-3'"
 *   "filename 'binlog.000002', position '157'"
 */
export function parseBinlogPos(s: string | undefined): BinlogFacts | undefined {
  if (!s) return undefined;
  const m = /filename '([^']+)', position '?(\d+)'?/.exec(s);
  if (!m) return undefined;
  const facts: BinlogFacts = { file: m[1] as string, position: Number(m[2]) };
  const g = /GTID of the last change '([^']*)'/.exec(s)?.[1]?.replace(/\s+/g, '');
  if (g) facts.gtid = g;
  return facts;
}

/** xtrabackup_binlog_info / mariadb_backup_binlog_info: "file<TAB>position[<TAB>gtid]". */
export function parseBinlogInfoFile(text: string): BinlogFacts | undefined {
  const line = text.split('\n').find((l) => l.trim() !== '');
  if (!line) return undefined;
  const [file, pos, ...gtid] = line.trim().split(/\s+/);
  if (!file || !pos || !/^\d+$/.test(pos)) return undefined;
  const facts: BinlogFacts = { file, position: Number(pos) };
  const g = gtid.join('').trim();
  if (g) facts.gtid = g;
  return facts;
}

/** The [mysqld] settings of backup-my.cnf. */
export function parseBackupMyCnf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let inMysqld = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      inMysqld = sec[1] === 'mysqld';
      continue;
    }
    if (!inMysqld) continue;
    const m = /^([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(line);
    if (m) out[(m[1] as string).replace(/-/g, '_')] = (m[2] as string).replace(/^"(.*)"$/, '$1');
  }
  return out;
}

/** True when the tool's log (its last non-empty line) says the run succeeded. */
export function completedOk(lines: readonly string[]): boolean {
  const last = [...lines].reverse().find((l) => l.trim() !== '');
  return last !== undefined && /completed OK!\s*$/.test(last);
}

/** Error lines of mariabackup/xtrabackup logs, for messages. */
export function toolErrorLines(lines: readonly string[]): string[] {
  return lines.filter((l) =>
    /\b(Error|ERROR|FATAL|Fatal error|failed|Failed|Assertion|not found|cannot|Can't|denied)\b/.test(l) && !/\[Note\]/.test(l),
  );
}

/** mariabackup prints SHOW GRANTS when a privilege is missing: keep password hashes out of logs. */
export function redactToolLine(line: string): string {
  return line
    .replace(/(IDENTIFIED (?:BY PASSWORD|VIA \S+ (?:USING|AS))\s+)'[^']*'/gi, "$1'***'")
    .replace(/(IDENTIFIED (?:WITH \S+ )?(?:BY|AS)\s+)'[^']*'/gi, "$1'***'");
}

// ---------------------------------------------------------------------------------------------
// LSNs: 64-bit counters, kept as decimal strings in facts (JSON numbers lose precision above 2^53)

export function isLsn(v: unknown): v is string {
  return typeof v === 'string' && /^\d{1,20}$/.test(v);
}

/** An LSN from facts (string or number); undefined when absent or not an LSN. */
export function lsnOf(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v);
  if (typeof v === 'bigint' && v >= 0n) return v.toString();
  return isLsn(v) ? String(BigInt(v)) : undefined;
}

export function compareLsn(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Which server a backup is of

export interface ServerIdentity {
  /** A short hash of the fields below that decide "the same server". */
  fingerprint: string;
  flavor: MysqlFlavor;
  hostname: string;
  serverId: number;
  /** The datadir as the server reports it (no trailing slash). */
  datadir: string;
  /** MySQL's @@server_uuid (MariaDB has none). */
  uuid?: string;
  port: number;
}

/**
 * MySQL: the server_uuid (auto.cnf) names an instance. MariaDB has no instance id: the
 * hostname, server_id and datadir together stand for it (the LSN check catches most of the
 * rest: a different or re-initialised server has an unrelated, usually much smaller, LSN).
 * The port is recorded but not part of the identity (moving a server to another port keeps
 * its data).
 */
export function serverIdentity(i: Omit<ServerIdentity, 'fingerprint'>): ServerIdentity {
  const datadir = normalizeDir(i.datadir);
  const basis = i.uuid
    ? `mysql-uuid\u0000${i.uuid.toLowerCase()}`
    : `${i.flavor}\u0000${i.hostname}\u0000${i.serverId}\u0000${datadir}`;
  const fingerprint = createHash('sha256').update(basis).digest('hex').slice(0, 16);
  return { fingerprint, ...i, datadir };
}

export function normalizeDir(d: string): string {
  return d.length > 1 ? d.replace(/\/+$/, '') : d;
}

/** What differs between two identities, for a message ("server_id 1 -> 2"). */
export function identityDiff(a: Partial<ServerIdentity>, b: ServerIdentity): string[] {
  const out: string[] = [];
  if (a.uuid !== undefined || b.uuid !== undefined) {
    if (a.uuid !== b.uuid) out.push(`server_uuid ${a.uuid ?? '-'} -> ${b.uuid ?? '-'}`);
    return out;
  }
  if (a.flavor !== undefined && a.flavor !== b.flavor) out.push(`flavor ${a.flavor} -> ${b.flavor}`);
  if (a.hostname !== b.hostname) out.push(`hostname ${a.hostname ?? '-'} -> ${b.hostname}`);
  if (a.serverId !== b.serverId) out.push(`server_id ${a.serverId ?? '-'} -> ${b.serverId}`);
  if (a.datadir !== undefined && normalizeDir(a.datadir) !== b.datadir) out.push(`datadir ${a.datadir} -> ${b.datadir}`);
  return out;
}
