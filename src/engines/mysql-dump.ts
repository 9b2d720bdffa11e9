// mysqldump / mariadb-dump: the argument list, and the guard that turns the tool's stdout into
// an artifact stream that ERRORS (instead of ending cleanly) whenever the dump is not complete.
import type { TransformCallback } from 'node:stream';
import { DbsError } from '../errors.js';
import type { StreamEdges } from './types.js';
import { unquoteIdent } from './mysql-filter.js';
import type { ResolvedTool } from './mysql-tools.js';
import { ToolGuard, type ToolExit, type ToolGuardOptions } from './tool-stream.js';
import { versionAtLeast } from './mysql-tools.js';

export interface DumpPlan {
  /** Databases passed with --databases, in order. */
  databases: string[];
  /** db.table names left out of the databases (table subsets: everything not selected). */
  ignoreTables: string[];
  /** --routines --events (whole databases only). */
  routinesAndEvents: boolean;
  /** Record binlog coordinates (--master-data=2 / --source-data=2, a comment in the dump). */
  binlog: boolean;
}

/**
 * The argv of a dump. optionFile holds user/password/host (0600) and comes FIRST: with
 * --defaults-file no other option file (/etc/mysql/*.cnf, ~/.my.cnf) is read. No secret is
 * ever part of this list.
 *
 * Flags:
 *  --single-transaction   one consistent InnoDB snapshot without locking (no LOCK TABLES)
 *  --quick                rows are streamed, not buffered in the tool
 *  --hex-blob             binary columns as 0x.. literals: the dump stays valid text
 *  --default-character-set=utf8mb4  no lossy conversion of 4-byte characters
 *  --triggers (default, explicit)   triggers follow each table's data
 *  --routines --events    stored programs of whole databases
 *  --no-tablespaces       tablespaces need PROCESS and only matter for NDB; without it
 *                         MySQL 8's mysqldump prints an "Error:" line for users lacking PROCESS
 *  --max-allowed-packet=1G  rows up to the protocol maximum can be read
 *  --master-data=2        (MySQL >= 8.0.26: --source-data=2) binlog coordinates as a comment,
 *                         only when the server writes a binlog. MariaDB takes them from the
 *                         snapshot itself (binlog_snapshot_file/position), no FTWRL.
 *  --set-gtid-purged=COMMENTED (MySQL >= 8.0.32; older: OFF) the GTID set only as a comment:
 *                         an active SET @@GLOBAL.GTID_PURGED fails a restore into a server
 *                         that has GTIDs of its own
 *  --databases .. --      always, so the dump carries CREATE DATABASE/USE for every database
 *                         (a restore can rename and filter by database); "--" ends the options
 *                         so no database name can ever be taken for an option.
 *
 * Table subsets: the databases that hold the selected tables are dumped with --databases plus
 * --ignore-table for every other table/view of them. This keeps ONE snapshot for tables from
 * several databases (one dump per database would be several snapshots) and keeps the
 * CREATE DATABASE/USE lines. Routines and events are not dumped for table subsets.
 */
export function buildDumpArgs(tool: ResolvedTool, optionFile: string, plan: DumpPlan): string[] {
  const args = [
    `--defaults-file=${optionFile}`,
    '--single-transaction',
    '--quick',
    '--hex-blob',
    '--default-character-set=utf8mb4',
    '--triggers',
    '--no-tablespaces',
    '--max-allowed-packet=1G',
  ];
  if (plan.routinesAndEvents) args.push('--routines', '--events');
  if (tool.flavor === 'mysql') {
    args.push(versionAtLeast(tool.version, 8, 0, 32) ? '--set-gtid-purged=COMMENTED' : '--set-gtid-purged=OFF');
  }
  if (plan.binlog) {
    args.push(tool.flavor === 'mysql' && versionAtLeast(tool.version, 8, 0, 26) ? '--source-data=2' : '--master-data=2');
  }
  for (const t of plan.ignoreTables) args.push(`--ignore-table=${t}`);
  args.push('--databases', '--', ...plan.databases);
  return args;
}

// ---------------------------------------------------------------------------------------------
// The guard

export type DumpExit = ToolExit;

export interface BinlogFacts {
  file: string;
  position: number;
  gtid?: string;
}

const HEAD_BYTES = 64 * 1024;
const TAIL_BYTES = 4 * 1024;
const TRAILER = Buffer.from('\n-- Dump completed');

export type DumpGuardOptions = ToolGuardOptions;

/**
 * What dbs keeps of a dump as it passes: the first 64 KiB (header, binlog coordinates), the last
 * 4 KiB (trailer, MariaDB's deferred GTID), the size and the section index. Used while backing
 * up (DumpGuard) and when a stored dump is read back (`backup verify --prepare`).
 */
export class DumpView {
  #head: Buffer[] = [];
  #headLen = 0;
  #tail: Buffer = Buffer.alloc(0);
  bytes = 0;
  /** The databases and objects the dump holds, read from its section titles as it passes. */
  readonly index = new DumpIndex();

  feed(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.index.scan(chunk);
    if (this.#headLen < HEAD_BYTES) {
      const take = chunk.subarray(0, HEAD_BYTES - this.#headLen);
      this.#head.push(Buffer.from(take)); // a copy: the head is small and kept
      this.#headLen += take.length;
    }
    if (chunk.length >= TAIL_BYTES) {
      this.#tail = Buffer.from(chunk.subarray(chunk.length - TAIL_BYTES));
    } else {
      const joined = Buffer.concat([this.#tail, chunk]);
      this.#tail = joined.length > TAIL_BYTES ? joined.subarray(joined.length - TAIL_BYTES) : joined;
    }
  }

  /** Only the edges and the size (the sink's framed path); the index stays empty. */
  takeEdges(e: StreamEdges): void {
    this.#head = [Buffer.from(e.head.subarray(0, HEAD_BYTES))];
    this.#headLen = this.#head[0]!.length;
    this.#tail = Buffer.from(e.tail.subarray(Math.max(0, e.tail.length - TAIL_BYTES)));
    this.bytes = e.rawBytes;
  }

  headText(): string {
    return Buffer.concat(this.#head).toString('utf8');
  }

  tailText(): string {
    return this.#tail.toString('utf8');
  }

  /** What makes the stream less than a whole dump (start, end), or undefined. */
  incomplete(): string | undefined {
    if (!hasTrailer(this.#tail)) return 'it lacks the "-- Dump completed" trailer';
    if (!hasHeader(this.headText())) return "it does not start with the dump tool's header (its beginning is missing)";
    return undefined;
  }
}

/**
 * A pass-through Transform over the dump tool's stdout, keeping a DumpView of it. In _flush
 * it waits for the tool to exit: exit code, signal, a whole dump (header and trailer) and the
 * error lines of stderr decide whether the stream ends cleanly or errors (DbsError
 * BACKUP_FAILED, or INTERRUPTED when cancelled). A consumer therefore never sees a clean end of
 * a failed dump.
 */
export class DumpGuard extends ToolGuard {
  readonly #view = new DumpView();
  constructor(opts: DumpGuardOptions) {
    super(opts);
  }

  get bytes(): number {
    return this.#view.bytes;
  }

  get index(): DumpIndex {
    return this.#view.index;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#view.feed(chunk);
    cb(null, chunk);
  }

  /**
   * The sink's framed path: it hands over only the start, the end and the size of the dump
   * (the section index then stays empty and the engine reports the objects it asked for).
   */
  takeEdges(e: StreamEdges): void {
    this.#view.takeEdges(e);
  }

  /** Binlog coordinates from the `-- CHANGE MASTER TO` comment (and GTID), if present. */
  binlog(): BinlogFacts | undefined {
    return parseBinlogFacts(this.#view.headText(), this.#view.tailText());
  }

  check(exit: DumpExit): DbsError | undefined {
    const { toolName, what } = this.opts;
    const tail = this.opts.stderrTail();
    const errLines = tail.filter(isToolErrorLine);
    const lastErr = errLines.at(-1) ?? tail.filter((l) => l.trim() !== '').at(-1);
    const details = {
      tool: toolName,
      ...(exit.exitCode !== undefined ? { exitCode: exit.exitCode } : {}),
      ...(exit.signal ? { signal: exit.signal } : {}),
      stderrTail: tail,
      bytes: this.#view.bytes,
    };
    if (exit.canceled) {
      return new DbsError('INTERRUPTED', `the dump of ${what} was interrupted; ${toolName} was stopped`, {
        details,
      });
    }
    let problem: string | undefined;
    if (exit.signal) problem = `${toolName} was killed by ${exit.signal}`;
    else if (exit.exitCode !== 0) {
      problem = `${toolName} exited with code ${exit.exitCode ?? 'unknown'}${exit.failureMessage && exit.exitCode === undefined ? ` (${exit.failureMessage})` : ''}`;
    } else if (errLines.length > 0) problem = `${toolName} reported an error`;
    else if (this.#view.bytes === 0) problem = `${toolName} wrote nothing`;
    else {
      const missing = this.#view.incomplete();
      if (missing) problem = `the dump is incomplete: ${missing}`;
    }
    if (!problem) return undefined;
    return new DbsError('BACKUP_FAILED', `dump of ${what} failed: ${problem}${lastErr ? `: ${lastErr}` : ''}`, {
      hint: hintFor(lastErr ?? ''),
      details,
    });
  }
}

/**
 * The dump tools start with a header comment: "-- MySQL dump 10.13 ..." or "-- MariaDB dump
 * 10.19 ...", newer MariaDB after a sandbox-mode line. A stream that starts elsewhere lost its
 * beginning on the way (a restore of it would start in the middle of a table's rows).
 */
function hasHeader(head: string): boolean {
  return /^(\/\*M?!999999\\- enable the sandbox mode \*\/ *\r?\n)?-- (MySQL|MariaDB) dump /.test(head);
}

function hasTrailer(tail: Buffer): boolean {
  // The trailer is the last comment line: "-- Dump completed" (+ " on DATE"), then a newline.
  const i = tail.lastIndexOf(TRAILER);
  if (i < 0) return false;
  const rest = tail.subarray(i + TRAILER.length).toString('utf8');
  return /^( on [^\n]*)?\n?$/.test(rest);
}

/** An error line of mysqldump/mariadb-dump on stderr (warnings and notes are not errors). */
export function isToolErrorLine(line: string): boolean {
  const m = /^(mysqldump|mariadb-dump|mariadb|mysql)(?:\.exe)?:\s+(.*)$/.exec(line.trim());
  if (!m) return /^(ERROR|Error)\b/.test(line.trim());
  const text = m[2] ?? '';
  if (/^\[?(Warning|Note)\]?\b/i.test(text)) return false;
  if (/Deprecated program name/i.test(text)) return false;
  return true;
}

function hintFor(line: string): string {
  if (/denied/i.test(line)) {
    return 'grant the backup user SELECT, SHOW VIEW, TRIGGER and EVENT on the selected databases';
  }
  if (/Lost connection|gone away|2013|2006/i.test(line)) {
    return 'the server closed the connection during the dump: check its error log, max_allowed_packet and net_write_timeout';
  }
  if (/doesn't exist|Unknown database|1049|1146/i.test(line)) {
    return 'a selected database or table does not exist (any more): check the plan\'s selection';
  }
  return "see the task log for the dump tool's messages";
}

/**
 * Binlog coordinates from a dump's head: MariaDB/MySQL `-- CHANGE MASTER TO MASTER_LOG_FILE=..,
 * MASTER_LOG_POS=..;`, MySQL 8.0.26+ `-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE=..,
 * SOURCE_LOG_POS=..;`. GTID: MariaDB prints `-- SET GLOBAL gtid_slave_pos='..';` near the end;
 * MySQL `SET @@GLOBAL.GTID_PURGED=..'set';` in the head.
 */
export function parseBinlogFacts(head: string, tail = ''): BinlogFacts | undefined {
  const m =
    /^-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)',\s*MASTER_LOG_POS=(\d+)/m.exec(head) ??
    /^-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='([^']+)',\s*SOURCE_LOG_POS=(\d+)/m.exec(head);
  if (!m) return undefined;
  const facts: BinlogFacts = { file: m[1] ?? '', position: Number(m[2]) };
  const g =
    /^-- SET GLOBAL gtid_slave_pos='([^']*)'/m.exec(tail) ??
    /^-- SET GLOBAL gtid_slave_pos='([^']*)'/m.exec(head) ??
    /GTID_PURGED=(?:\/\*!80000 '\+'\*\/ )?'([^']*)'/.exec(head);
  const gtid = g?.[1]?.replace(/\s+/g, '');
  if (gtid) facts.gtid = gtid;
  return facts;
}

// ---------------------------------------------------------------------------------------------
// What the dump holds, from its section titles (so the facts match the snapshot exactly)

const NL = 0x0a;
const TITLE = Buffer.from('\n-- ');
const MAX_TITLE = 4096;
const RE_DB_TITLE = /^-- Current Database: (`(?:[^`]|``)*`)\s*$/;
const RE_OBJ_TITLE =
  /^-- (Table structure for table|Temporary table structure for view|Temporary view structure for view|Sequence structure for) (`(?:[^`]|``)*`)\s*$/;

/**
 * Collects `-- Current Database:` and `-- Table structure for table` (view, sequence) titles
 * from a dump stream with one native search per chunk for "\n-- " (data lines never start
 * with "-- "), so it costs next to nothing on a multi-GB dump.
 */
export class DumpIndex {
  readonly databases: string[] = [];
  readonly tables: string[] = [];
  readonly views: string[] = [];
  readonly sequences: string[] = [];
  #db: string | undefined;
  /** The start of a line that began in an earlier chunk and may be a title. */
  #partial: Buffer | null = Buffer.alloc(0); // the stream starts at a line start

  scan(chunk: Buffer): void {
    let pos = 0;
    if (this.#partial !== null) {
      const nl = chunk.indexOf(NL);
      const piece = nl < 0 ? chunk : chunk.subarray(0, nl);
      let line: Buffer | null = Buffer.concat([this.#partial, piece.subarray(0, MAX_TITLE)]);
      if (line.length >= 3 && !(line[0] === 0x2d && line[1] === 0x2d && line[2] === 0x20)) line = null;
      else if (line.length > MAX_TITLE) line = null;
      if (nl < 0) {
        this.#partial = line;
        return;
      }
      this.#partial = null;
      if (line) this.#line(line);
      pos = nl;
    }
    for (;;) {
      const i = chunk.indexOf(TITLE, pos);
      if (i < 0) break;
      const nl = chunk.indexOf(NL, i + 1);
      if (nl < 0) {
        this.#partial = Buffer.from(chunk.subarray(i + 1, Math.min(chunk.length, i + 1 + MAX_TITLE)));
        return;
      }
      this.#line(chunk.subarray(i + 1, nl));
      pos = nl;
    }
    // A title may start right at the chunk boundary: "\n", "\n-" or "\n--" at the end.
    const last = chunk.lastIndexOf(NL);
    if (last >= 0 && last >= chunk.length - 3) {
      const rest = chunk.subarray(last + 1);
      if (rest.every((b) => b === 0x2d)) this.#partial = Buffer.from(rest);
    }
  }

  #line(buf: Buffer): void {
    const text = buf.toString('utf8');
    let m = RE_DB_TITLE.exec(text);
    if (m) {
      const db = unquoteIdent(m[1] as string);
      this.#db = db;
      if (!this.databases.includes(db)) this.databases.push(db);
      return;
    }
    m = RE_OBJ_TITLE.exec(text);
    if (m) {
      const name = unquoteIdent(m[2] as string);
      const full = this.#db === undefined ? name : `${this.#db}.${name}`;
      const kind = m[1] as string;
      if (kind.includes('view')) this.views.push(full);
      else if (kind.startsWith('Sequence')) this.sequences.push(full);
      this.tables.push(full);
    }
  }
}
