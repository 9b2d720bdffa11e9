// A streaming filter over a mysqldump / mariadb-dump SQL text: keeps some databases or some
// tables out of a full dump, renames databases, and can drop MariaDB's sandbox-mode first line.
//
// It is a line-oriented state machine on the section comments the dump tools write:
//
//   --                                         (a bare "--" line before and after each title)
//   -- Current Database: `db`                  CREATE DATABASE .. `db` ..;  USE `db`;
//   -- Table structure for table `t`           DROP/CREATE TABLE
//   -- Dumping data for table `t`              LOCK/INSERT/UNLOCK, then the table's triggers
//   -- Temporary table structure for view `v`  (MySQL: "Temporary view structure for view")
//   -- Sequence structure for `s`              (MariaDB sequences)
//   -- Dumping events for database 'db'
//   -- Dumping routines for database 'db'
//   -- Final view structure for view `v`       (after every table, under a second USE `db`)
//   /*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;  the footer (session settings, trailer)
//
// A section title counts only after a bare "--" line and outside DELIMITER blocks (trigger,
// routine and event bodies), so text inside stored programs cannot start a section. Data never
// spans lines: the tools escape newlines inside values.
//
// Memory and speed: the dump's lines can be megabytes long (extended INSERTs). The filter works
// on Buffers: it finds newlines with indexOf, decides a line's fate from its first bytes, and
// passes kept bytes on as slices of the input chunks. Only short lines that may be special
// (starting with "--", "CREATE DATABASE", "USE", "ALTER DATABASE", "DELIMITER", the footer) are
// gathered and decoded.
import { Transform, type TransformCallback } from 'node:stream';

export interface SqlFilterOptions {
  /** Keep these databases in full: tables, views, sequences, triggers, routines, events. */
  databases?: Iterable<string>;
  /**
   * Keep these tables/views/sequences ([db, name]) with their triggers, plus the CREATE
   * DATABASE/USE of their databases (no routines or events of those databases).
   */
  tables?: Iterable<readonly [string, string]>;
  /** Rename databases (CREATE DATABASE, USE, ALTER DATABASE and the section titles). */
  rename?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /** Drop MariaDB's `/*M!999999\- enable the sandbox mode *\/` first line (MySQL clients fail on it). */
  dropSandboxLine?: boolean;
}

/** True when the options keep everything (no need to filter at all, except renames). */
export function keepsEverything(o: SqlFilterOptions): boolean {
  return o.databases === undefined && o.tables === undefined;
}

type Section =
  | { kind: 'header' | 'footer'; keep: boolean }
  | { kind: 'database'; keep: boolean; db: string }
  | { kind: 'object'; keep: boolean; db: string | undefined; name: string }
  | { kind: 'program'; keep: boolean; db: string };

const NL = 0x0a;
/** Lines longer than this are never special (a safety cap on what is gathered). */
const MAX_SPECIAL_LINE = 1024 * 1024;
/** Bytes needed to decide whether a line may be special. */
const PREFIX_BYTES = 64;

const SPECIALS = [
  '--',
  'CREATE DATABASE ',
  'USE ',
  'ALTER DATABASE ',
  'DELIMITER ',
  '/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE',
  '/*M!999999',
].map((s) => Buffer.from(s));
const DELIM_SPECIALS = ['DELIMITER ', 'ALTER DATABASE '].map((s) => Buffer.from(s));
const FIRST_BYTES = new Set(SPECIALS.map((b) => b[0]));
const FIRST_BYTES_DELIM = new Set(DELIM_SPECIALS.map((b) => b[0]));

const IDENT = '`(?:[^`]|``)*`';
const RE_CURRENT_DB = new RegExp(`^-- Current Database: (${IDENT})\\s*$`);
const RE_OBJECT = new RegExp(
  `^-- (Table structure for table|Dumping data for table|Temporary table structure for view|Temporary view structure for view|Final view structure for view|Sequence structure for) (${IDENT})\\s*$`,
);
const RE_PROGRAM = /^-- Dumping (events|routines) for database '(.*)'\s*$/;
const RE_RENAMABLE = [
  new RegExp(`^(-- Current Database: )(${IDENT})(.*)$`, 's'),
  new RegExp(`^(CREATE DATABASE (?:/\\*!32312 IF NOT EXISTS\\*/ )?(?:IF NOT EXISTS )?)(${IDENT})(.*)$`, 's'),
  new RegExp(`^(USE )(${IDENT})(.*)$`, 's'),
  new RegExp(`^(ALTER DATABASE )(${IDENT})(.*)$`, 's'),
];

export function unquoteIdent(q: string): string {
  return q.slice(1, -1).replace(/``/g, '`');
}

function quoteIdent(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

function key(db: string, name: string): string {
  return `${db}\u0000${name}`;
}

export class SqlFilter extends Transform {
  readonly #keepAll: boolean;
  readonly #wholeDbs: Set<string>;
  readonly #tables: Set<string>;
  readonly #tableNames: Set<string>;
  readonly #tableDbs: Set<string>;
  readonly #rename: Map<string, string>;
  readonly #dropSandbox: boolean;

  #section: Section = { kind: 'header', keep: true };
  #currentDb: string | undefined;
  #inDelimiter = false;
  #pendingDash: Buffer | null = null;
  #atLineStart = true;
  #lineKeep = true;
  #acc: Buffer[] = [];
  #accLen = 0;
  #lineNo = 0;

  #out: Buffer[] = [];
  #runChunk: Buffer | null = null;
  #runStart = 0;
  #runEnd = 0;

  /** db.name of every table/view/sequence section that was kept (as in the dump, before renames). */
  readonly kept = new Set<string>();
  /** Databases whose section was kept (names as in the dump). */
  readonly keptDatabases = new Set<string>();

  constructor(opts: SqlFilterOptions = {}) {
    super({ highWaterMark: 1024 * 1024 });
    this.#keepAll = keepsEverything(opts);
    this.#wholeDbs = new Set(opts.databases ?? []);
    this.#tables = new Set();
    this.#tableNames = new Set();
    this.#tableDbs = new Set();
    for (const [db, name] of opts.tables ?? []) {
      this.#tables.add(key(db, name));
      this.#tableNames.add(name);
      this.#tableDbs.add(db);
    }
    this.#rename = new Map(
      opts.rename instanceof Map ? opts.rename : Object.entries((opts.rename ?? {}) as Record<string, string>),
    );
    this.#dropSandbox = opts.dropSandboxLine ?? false;
  }

  // --- decisions ---

  #dbKept(db: string): boolean {
    return this.#keepAll || this.#wholeDbs.has(db) || this.#tableDbs.has(db);
  }

  #objectKept(db: string | undefined, name: string): boolean {
    if (this.#keepAll) return true;
    if (db === undefined) return this.#tableNames.has(name); // a dump without --databases
    return this.#wholeDbs.has(db) || this.#tables.has(key(db, name));
  }

  #programsKept(db: string): boolean {
    return this.#keepAll || this.#wholeDbs.has(db);
  }

  // --- output batching: kept bytes are slices of the input; adjacent slices are merged ---

  #keepRange(chunk: Buffer, s: number, e: number): void {
    if (this.#runChunk === chunk && this.#runEnd === s) {
      this.#runEnd = e;
      return;
    }
    this.#flushRun();
    this.#runChunk = chunk;
    this.#runStart = s;
    this.#runEnd = e;
  }

  #flushRun(): void {
    if (this.#runChunk) {
      if (this.#runEnd > this.#runStart) this.#out.push(this.#runChunk.subarray(this.#runStart, this.#runEnd));
      this.#runChunk = null;
    }
  }

  #emit(buf: Buffer): void {
    this.#flushRun();
    if (buf.length > 0) this.#out.push(buf);
  }

  #emitIfKept(buf: Buffer): void {
    if (this.#section.keep) this.#emit(buf);
  }

  #pushOut(): void {
    this.#flushRun();
    const out = this.#out;
    this.#out = [];
    for (const b of out) this.push(b);
  }

  #flushPendingDash(): void {
    if (this.#pendingDash) {
      const p = this.#pendingDash;
      this.#pendingDash = null;
      this.#emitIfKept(p);
    }
  }

  // --- classification ---

  #mayBeSpecial(b: number): boolean {
    return this.#inDelimiter ? FIRST_BYTES_DELIM.has(b) : FIRST_BYTES.has(b);
  }

  #classify(prefix: Buffer, complete: boolean): 'special' | 'ordinary' | 'undecided' {
    let undecided = false;
    for (const p of this.#inDelimiter ? DELIM_SPECIALS : SPECIALS) {
      if (prefix.length >= p.length) {
        if (prefix.subarray(0, p.length).equals(p)) return 'special';
      } else if (p.subarray(0, prefix.length).equals(prefix)) {
        undecided = true;
      }
    }
    return undecided && !complete ? 'undecided' : 'ordinary';
  }

  #beginOrdinaryLine(): void {
    this.#flushPendingDash();
    this.#lineKeep = this.#section.keep;
    this.#atLineStart = false;
  }

  // --- the stream ---

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.#process(chunk);
      this.#pushOut();
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (this.#accLen > 0) {
        const line = Buffer.concat(this.#acc);
        this.#acc = [];
        this.#accLen = 0;
        this.#handleLine(line);
      }
      this.#flushPendingDash();
      this.#pushOut();
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  #process(chunk: Buffer): void {
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      if (!this.#atLineStart) {
        // The rest of an ordinary line: pass or drop up to the newline, without looking.
        const nl = chunk.indexOf(NL, pos);
        const end = nl < 0 ? len : nl + 1;
        if (this.#lineKeep) this.#keepRange(chunk, pos, end);
        pos = end;
        if (nl >= 0) {
          this.#atLineStart = true;
          this.#lineNo++;
        }
        continue;
      }
      if (this.#accLen === 0 && !this.#mayBeSpecial(chunk[pos] as number)) {
        this.#beginOrdinaryLine(); // the common case: a data row, a column definition...
        continue;
      }
      const nl = chunk.indexOf(NL, pos);
      if (nl >= 0) {
        const piece = chunk.subarray(pos, nl + 1);
        const line = this.#accLen === 0 ? piece : Buffer.concat([...this.#acc, piece]);
        this.#acc = [];
        this.#accLen = 0;
        pos = nl + 1;
        this.#handleLine(line);
        this.#lineNo++;
        continue;
      }
      // The line goes on in the next chunk: gather it while it may still be special.
      const piece = chunk.subarray(pos);
      this.#acc.push(piece);
      this.#accLen += piece.length;
      pos = len;
      const prefix = this.#prefix();
      const verdict = this.#classify(prefix, false);
      if (verdict === 'ordinary' || (verdict === 'special' && this.#accLen > MAX_SPECIAL_LINE)) {
        const pieces = this.#acc;
        this.#acc = [];
        this.#accLen = 0;
        this.#beginOrdinaryLine();
        if (this.#lineKeep) for (const p of pieces) this.#emit(p);
      }
    }
  }

  #prefix(): Buffer {
    const first = this.#acc[0];
    if (first && (first.length >= PREFIX_BYTES || this.#acc.length === 1)) return first.subarray(0, PREFIX_BYTES);
    return Buffer.concat(this.#acc).subarray(0, PREFIX_BYTES);
  }

  /** A complete line (with its "\n", except maybe the last line of the stream). */
  #handleLine(line: Buffer): void {
    if (this.#classify(line.subarray(0, PREFIX_BYTES), true) !== 'special') {
      this.#flushPendingDash();
      this.#emitIfKept(line);
      return;
    }
    const eol = line.at(-1) === NL ? (line.at(-2) === 0x0d ? '\r\n' : '\n') : '';
    const text = line.toString('utf8', 0, line.length - eol.length);

    if (this.#inDelimiter) {
      if (/^DELIMITER\s+;\s*$/.test(text)) this.#inDelimiter = false;
      this.#emitIfKept(this.#renamed(text, eol) ?? line);
      return;
    }

    if (text === '--') {
      this.#flushPendingDash();
      this.#pendingDash = line;
      return;
    }

    if (this.#pendingDash && text.startsWith('-- ') && this.#enterSection(text)) {
      const dash = this.#pendingDash;
      this.#pendingDash = null;
      this.#emitIfKept(dash);
      this.#emitIfKept(this.#renamed(text, eol) ?? line);
      return;
    }

    this.#flushPendingDash();
    const delim = /^DELIMITER\s+(\S+)\s*$/.exec(text);
    if (delim) {
      if (delim[1] !== ';') this.#inDelimiter = true;
      this.#emitIfKept(line);
      return;
    }
    if (text.startsWith('/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE')) {
      this.#section = { kind: 'footer', keep: true };
      this.#emit(line);
      return;
    }
    if (this.#lineNo === 0 && text.startsWith('/*M!999999')) {
      if (!this.#dropSandbox) this.#emitIfKept(line);
      return;
    }
    this.#emitIfKept(this.#renamed(text, eol) ?? line);
  }

  /** Switches to the section a title line opens; false when the line is no section title. */
  #enterSection(text: string): boolean {
    let m = RE_CURRENT_DB.exec(text);
    if (m) {
      const db = unquoteIdent(m[1] as string);
      this.#currentDb = db;
      const keep = this.#dbKept(db);
      if (keep) this.keptDatabases.add(db);
      this.#section = { kind: 'database', keep, db };
      return true;
    }
    m = RE_OBJECT.exec(text);
    if (m) {
      const name = unquoteIdent(m[2] as string);
      const db = this.#currentDb;
      const keep = this.#objectKept(db, name);
      if (keep) this.kept.add(db === undefined ? name : `${db}.${name}`);
      this.#section = { kind: 'object', keep, db, name };
      return true;
    }
    m = RE_PROGRAM.exec(text);
    if (m) {
      const db = m[2] as string;
      this.#section = { kind: 'program', keep: this.#programsKept(db), db };
      return true;
    }
    return false;
  }

  /** The line with a renamed database identifier, or undefined when nothing changes. */
  #renamed(text: string, eol: string): Buffer | undefined {
    if (this.#rename.size === 0) return undefined;
    for (const re of RE_RENAMABLE) {
      const m = re.exec(text);
      if (!m) continue;
      const to = this.#rename.get(unquoteIdent(m[2] as string));
      if (to === undefined) return undefined;
      return Buffer.from(`${m[1]}${quoteIdent(to)}${m[3]}${eol}`, 'utf8');
    }
    return undefined;
  }
}

export function createSqlFilter(opts: SqlFilterOptions = {}): SqlFilter {
  return new SqlFilter(opts);
}
