// mysqldump / mariadb-dump: the argument list, and the guard that turns the tool's stdout into
// an artifact stream that ERRORS (instead of ending cleanly) whenever the dump is not complete.
import type { TransformCallback } from 'node:stream';
import { DbsError } from '../../errors.js';
import type { StreamEdges } from '../types.js';
import { unquoteIdent } from './filter.js';
import type { ResolvedTool } from './tools.js';
import { ToolGuard, type ToolExit, type ToolGuardOptions } from '../tool-stream.js';
import { versionAtLeast } from './tools.js';

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
 *  --verbose              the tool's account of each table on stderr (DumpAccount): on the
 *                         framed path it is what tells that every table's rows were dumped
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
    '--verbose',
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

export interface DumpGuardOptions extends ToolGuardOptions {
  /**
   * The tool's --verbose account of each table (fed from its stderr): what tells, on the
   * edges-only path, that every table's rows were dumped.
   */
  account?: DumpAccount;
}

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
  /** False once only the edges were handed over (the index then knows nothing). */
  whole = true;

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
    this.whole = false;
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

  /** The end of the stream (idempotent): closes the index's last section. */
  finish(): void {
    this.index.finish();
  }

  /** What makes the stream less than a whole dump (start, end), or undefined. */
  incomplete(): string | undefined {
    if (!hasTrailer(this.#tail)) return 'it lacks the "-- Dump completed" trailer';
    if (!hasHeader(this.headText())) return "it does not start with the dump tool's header (its beginning is missing)";
    return undefined;
  }

  /**
   * The tables whose rows are not in the dump (structure without a data section), when the
   * whole stream was seen; undefined on the edges-only path.
   */
  missingData(): TableWithoutData[] | undefined {
    if (!this.whole) return undefined;
    this.finish();
    return this.index.missingData;
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
  readonly #account: DumpAccount | undefined;
  constructor(opts: DumpGuardOptions) {
    super(opts);
    this.#account = opts.account;
  }

  /** True when the whole stream passed (the index is complete), not only its edges. */
  get whole(): boolean {
    return this.#view.whole;
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
   * (the section index then stays empty; the tool's account tells what the dump holds).
   */
  takeEdges(e: StreamEdges): void {
    this.#view.takeEdges(e);
  }

  /**
   * Tables whose rows the dump lacks: from the dump's own sections when the whole stream
   * passed, and from the tool's account (--verbose) whenever it is there and consistent.
   */
  tablesWithoutRows(): TableWithoutData[] {
    const out = new Map<string, TableWithoutData>();
    for (const t of this.#view.missingData() ?? []) out.set(t.table, t);
    const acc = this.#account;
    if (acc && acc.problem() === undefined) for (const t of acc.missingData) if (!out.has(t.table)) out.set(t.table, t);
    return [...out.values()];
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
    if (!problem) {
      const noRows = this.tablesWithoutRows();
      if (noRows.length > 0) {
        const names = noRows.slice(0, 10).map(tableLabel).join(', ') + (noRows.length > 10 ? ` and ${noRows.length - 10} more` : '');
        return new DbsError(
          'BACKUP_FAILED',
          `dump of ${what} failed: the rows of ${noRows.length === 1 ? 'table' : 'tables'} ${names} are not in the dump: ${toolName} wrote ${noRows.length === 1 ? 'its' : 'their'} structure without ${noRows.length === 1 ? 'its' : 'their'} data and exited ${exit.exitCode ?? 0} (it does so when it sees no columns, e.g. when the backup user lost SELECT on the table during the dump)`,
          {
            hint: 'grant the backup user SELECT on every table to back up, keep it while the dump runs, then run the plan again',
            details: { ...details, tablesWithoutData: noRows.map((t) => t.table) },
          },
        );
      }
      return undefined;
    }
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
/** How much of a table's structure section is kept to read its CREATE TABLE (DDL only). */
const MAX_DDL = 1 << 20;
const RE_DB_TITLE = /^-- Current Database: (`(?:[^`]|``)*`)\s*$/;
const RE_OBJ_TITLE =
  /^-- (Table structure for table|Temporary table structure for view|Temporary view structure for view|Sequence structure for) (`(?:[^`]|``)*`)\s*$/;
const RE_DATA_TITLE = /^-- Dumping data for table (`(?:[^`]|``)*`)\s*$/;
/** Titles that end a table's section (besides the ones above). */
const RE_SECTION_END = /^-- (Dumping (events|routines) for database |Final view structure for view |Dump completed)/;

/**
 * Engines whose data the dump tools leave out by design (mariadb-dump: MRG_MyISAM, MRG_ISAM,
 * CONNECT, OQGRAPH, SPIDER, VP, FEDERATED, and S3 without --copy-s3-tables; mysqldump:
 * MRG_MyISAM, MRG_ISAM, FEDERATED): their rows live elsewhere. A table of another engine
 * always gets a "-- Dumping data for table" section, empty or not.
 */
export const NO_DATA_ENGINES: ReadonlySet<string> = new Set(['MRG_MYISAM', 'MRG_ISAM', 'CONNECT', 'OQGRAPH', 'SPIDER', 'VP', 'FEDERATED', 'S3']);

/** A table whose section was seen without its data section. */
export interface TableWithoutData {
  /** "db.name" */
  table: string;
  db: string;
  name: string;
  /** The engine named in its CREATE TABLE, if read. */
  engine?: string;
}

interface OpenTable {
  db: string | undefined;
  name: string;
  ddl: Buffer[];
  ddlBytes: number;
}

/**
 * Collects `-- Current Database:` and `-- Table structure for table` (view, sequence) titles
 * from a dump stream with one native search per chunk for "\n-- " (data lines never start
 * with "-- "), so it costs next to nothing on a multi-GB dump.
 *
 * It also checks that every table's structure is followed by its data section ("-- Dumping
 * data for table", written before the tool reads a single row, so an empty table has one
 * too). The bytes between a table's title and the next title (its DROP/CREATE TABLE, a few
 * KB) are kept until then: a section without data is a table's only if it holds that table's
 * CREATE TABLE (a title-like comment line inside a routine's or trigger's body is not), and
 * its ENGINE tells whether the tool leaves its rows out by design. Call finish() at the end.
 */
export class DumpIndex {
  readonly databases: string[] = [];
  readonly tables: string[] = [];
  readonly views: string[] = [];
  readonly sequences: string[] = [];
  /** Tables whose rows the dump lacks: structure, no data section, an engine that has rows. */
  readonly missingData: TableWithoutData[] = [];
  /** Tables without a data section because of their engine (MERGE, FEDERATED, ...). */
  readonly dataLeftOut: TableWithoutData[] = [];
  #db: string | undefined;
  /** The start of a line that began in an earlier chunk and may be a title. */
  #partial: Buffer | null = Buffer.alloc(0); // the stream starts at a line start
  /** A table whose structure was seen, its data section not yet. */
  #open: OpenTable | undefined;

  scan(chunk: Buffer): void {
    let pos = 0;
    if (this.#partial !== null) {
      const before = this.#partial;
      const nl = chunk.indexOf(NL);
      const piece = nl < 0 ? chunk : chunk.subarray(0, nl);
      let line: Buffer | null = Buffer.concat([before, piece.subarray(0, MAX_TITLE)]);
      if (line.length >= 3 && !(line[0] === 0x2d && line[1] === 0x2d && line[2] === 0x20)) line = null;
      else if (line.length > MAX_TITLE) line = null;
      // Not a title after all: its bytes belong to the section.
      if (line === null && this.#open) this.#keep(Buffer.concat([before, piece]), 0, before.length + piece.length);
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
      this.#keep(chunk, pos, i < 0 ? chunk.length : i);
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

  /** The end of the stream: the last table's section is over. */
  finish(): void {
    this.#close();
  }

  /** Keeps the bytes of an open table's structure section (bounded). */
  #keep(chunk: Buffer, from: number, to: number): void {
    const t = this.#open;
    if (!t || to <= from || t.ddlBytes >= MAX_DDL) return;
    const piece = chunk.subarray(from, Math.min(to, from + MAX_DDL - t.ddlBytes));
    t.ddl.push(Buffer.from(piece));
    t.ddlBytes += piece.length;
  }

  #line(buf: Buffer): void {
    const text = buf.toString('utf8');
    let m = RE_DATA_TITLE.exec(text);
    if (m) {
      const name = unquoteIdent(m[1] as string);
      const t = this.#open;
      if (t && t.name === name) {
        this.#open = undefined;
        this.tables.push(t.db === undefined ? name : `${t.db}.${name}`);
      } else this.#close(); // another table's data: the open one has none
      return;
    }
    m = RE_DB_TITLE.exec(text);
    if (m) {
      this.#close();
      const db = unquoteIdent(m[1] as string);
      this.#db = db;
      if (!this.databases.includes(db)) this.databases.push(db);
      return;
    }
    m = RE_OBJ_TITLE.exec(text);
    if (m) {
      this.#close();
      const name = unquoteIdent(m[2] as string);
      const full = this.#db === undefined ? name : `${this.#db}.${name}`;
      const kind = m[1] as string;
      if (kind === 'Table structure for table') {
        // Listed once its data section or its CREATE TABLE is seen.
        this.#open = { db: this.#db, name, ddl: [], ddlBytes: 0 };
        return;
      }
      if (kind.includes('view')) this.views.push(full);
      else if (kind.startsWith('Sequence')) this.sequences.push(full);
      this.tables.push(full);
      return;
    }
    if (RE_SECTION_END.test(text)) this.#close();
  }

  /** The open table's section ended without its data section. */
  #close(): void {
    const t = this.#open;
    if (!t) return;
    this.#open = undefined;
    const ddl = Buffer.concat(t.ddl).toString('utf8');
    const q = '`' + t.name.replace(/`/g, '``') + '`';
    if (!ddl.includes(`\nCREATE TABLE ${q} (`)) return; // a title-like line, not a table's section
    const full = t.db === undefined ? t.name : `${t.db}.${t.name}`;
    this.tables.push(full);
    const engine = /\n\) ENGINE=([A-Za-z0-9_]+)/.exec(ddl)?.[1];
    const entry: TableWithoutData = { table: full, db: t.db ?? '', name: t.name, ...(engine ? { engine } : {}) };
    if (engine && NO_DATA_ENGINES.has(engine.toUpperCase())) this.dataLeftOut.push(entry);
    else this.missingData.push(entry);
  }
}

// ---------------------------------------------------------------------------------------------
// The tool's own account of each table (--verbose on stderr), for the edges-only path

type AccountState = 'pending' | 'rows' | 'no-fields' | 'left-out';

/**
 * What mysqldump/mariadb-dump say on stderr with --verbose, table by table: "Retrieving table
 * structure for table t...", then "Sending SELECT query..." (the data section follows) or why
 * it skips the rows. The framed (pzstd) path never shows Node the dump itself, only its edges,
 * so there this account is what tells that every table's rows were dumped, and which tables
 * the dump holds. A few lines per table, so it costs nothing.
 *
 * The lines name no database: with --single-transaction the tool sets a savepoint at the start
 * of every database, in the order given after --databases; the n-th "Setting savepoint" starts
 * the n-th database. The account is only trusted when that count matches (see problem()).
 */
export class DumpAccount {
  readonly tables: string[] = [];
  readonly views: string[] = [];
  readonly sequences: string[] = [];
  /** Tables whose rows the tool did not dump (it saw no columns, or said nothing of them). */
  readonly missingData: TableWithoutData[] = [];
  /** Tables whose rows the tool leaves out by design (engine), with its reason. */
  readonly dataLeftOut: Array<TableWithoutData & { reason: string }> = [];
  #db = -1;
  #open: { db: string; name: string; view: boolean; state: AccountState; reason?: string } | undefined;
  #odd: string | undefined;
  /** Tables the tool said nothing of, beyond their structure. */
  #silent: TableWithoutData[] = [];
  #selects = 0;

  constructor(readonly databases: string[]) {}

  /**
   * Takes one stderr line. Returns true for the tool's progress lines, which need not go to
   * the task log (the reasons for rows left out do).
   */
  line(raw: string): boolean {
    const l = raw.trim();
    if (!l.startsWith('-- ')) return false;
    let m: RegExpExecArray | null;
    if (l === '-- Setting savepoint...') {
      this.#close();
      this.#db++;
      if (this.#db >= this.databases.length) this.#odd ??= `more databases than the ${this.databases.length} asked for`;
      return true;
    }
    if ((m = /^-- Retrieving table structure for table (.*)\.\.\.$/.exec(l))) {
      this.#close();
      this.#open = { db: this.databases[this.#db] ?? '', name: m[1] as string, view: false, state: 'pending' };
      if (this.#db < 0) this.#odd ??= `table ${m[1]} before the first database`;
      return true;
    }
    if ((m = /^-- Retrieving sequence structure for\s+(.*)\.\.\.$/.exec(l))) {
      this.#close();
      this.sequences.push(`${this.databases[this.#db] ?? ''}.${m[1]}`);
      this.tables.push(`${this.databases[this.#db] ?? ''}.${m[1]}`);
      return true;
    }
    const open = this.#open;
    if (l === "-- It's a view, create dummy view for view") {
      if (open) open.view = true;
      return true;
    }
    if (l === '-- Sending SELECT query...') {
      this.#selects++;
      if (open) open.state = 'rows';
      return true;
    }
    if (/^-- Skipping dump data for table '.*', it has no fields$/.test(l)) {
      if (open) open.state = 'no-fields';
      return false;
    }
    if ((m = /^-- (?:Warning: )?Skipping (?:dump )?data (?:for )?table '.*'[, ]+(.*)$/.exec(l)) || (m = /^-- Skipping data table (.*)$/.exec(l))) {
      // "because it's of type MRG_MyISAM", "this is S3 table and --copy-s3-tables=0",
      // "mysql.event, --skip-events was used": rows left out on purpose.
      if (open) {
        open.state = 'left-out';
        open.reason = (m[1] as string).trim();
      }
      return false;
    }
    if (l === '-- Rolling back to savepoint sp...' || l === '-- Releasing savepoint...') {
      this.#close();
      return true;
    }
    return /^-- (Retrieving rows|Connecting to|Starting transaction|Disconnecting from|Retrieving view structure for table|It's base table, skipped|Flushing tables|Getting|Dropping|Retrieving sequence)/.test(l);
  }

  /** Why the account cannot be trusted (then the caller must not rely on it), or undefined. */
  problem(): string | undefined {
    this.#close();
    if (this.#odd) return this.#odd;
    if (this.#db + 1 !== this.databases.length) {
      return `the dump tool's account names ${this.#db + 1} database(s), ${this.databases.length} were dumped`;
    }
    // A tool that never says "Sending SELECT query" speaks another dialect: its silence about
    // a table's rows tells nothing.
    if (this.#silent.length > 0 && this.#selects === 0) return "the dump tool's account of the tables is not understood";
    if (this.#silent.length > 0) {
      this.missingData.push(...this.#silent);
      this.#silent = [];
    }
    return undefined;
  }

  #close(): void {
    const t = this.#open;
    if (!t) return;
    this.#open = undefined;
    const full = `${t.db}.${t.name}`;
    this.tables.push(full);
    if (t.view) {
      this.views.push(full);
      return;
    }
    const entry: TableWithoutData = { table: full, db: t.db, name: t.name };
    if (t.state === 'left-out') this.dataLeftOut.push({ ...entry, reason: t.reason ?? '' });
    else if (t.state === 'no-fields') this.missingData.push(entry);
    else if (t.state === 'pending') this.#silent.push(entry);
  }
}

/** `db`.`table`, as MariaDB names it. */
export function tableLabel(t: Pick<TableWithoutData, 'db' | 'name'>): string {
  const q = (s: string): string => '`' + s.replace(/`/g, '``') + '`';
  return t.db === '' ? q(t.name) : `${q(t.db)}.${q(t.name)}`;
}
