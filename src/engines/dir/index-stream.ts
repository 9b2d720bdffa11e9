// The directory index as streams, never as a table in memory: a backup writes its entry and
// deletion lines into scratch files of the run's tmpDir as the walk goes (LineFile), and an
// incremental merges its walk with its parent's index line by line (ParentCursor), the
// parent's index first copied into a scratch file and read synchronously (the walk is a
// synchronous generator). Both rest on one fact: the walk emits paths in tree order (children
// sorted by name bytes, each directory before what is under it), and every index dbs wrote
// lists its entries in that order. A tree of 500,000 files held its index as objects:
// 407 MB of heap for a snapshot, 453 MB for an incremental.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { DbsError } from '../../errors.js';
import { array, number, object, oneOf, optString, string, type JsonObject } from '../../decode.js';
import type { IndexEntry } from './types.js';

export interface IndexHeader {
  kind: 'header';
  format: number;
  data: string;
  frames?: [number, number][];
  root?: { mode: number; uid: number; gid: number; mtime: string };
}

const INDEX_TYPES = ['file', 'dir', 'symlink', 'hardlink'] as const;
const DAMAGED = 'the backup is damaged; take a new snapshot';

/** An index header line, validated (INVALID_RECORD naming the field otherwise). */
export function decodeHeader(o: JsonObject, what: string): IndexHeader {
  const frames = o.frames === undefined ? undefined : array(o.frames, `${what}: frames`).map((f, i) => {
    const pair = array(f, `${what}: frame ${i}`);
    if (pair.length !== 2 || !pair.every((n) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0)) throw new DbsError('INVALID_RECORD', `${what}: frame ${i} is not a pair of offsets`);
    return [pair[0], pair[1]] as [number, number];
  });
  const r = o.root === undefined ? undefined : object(o.root, `${what}: root`);
  return {
    kind: 'header',
    format: number(o, 'format', what, { integer: true }),
    data: string(o, 'data', what),
    ...(frames ? { frames } : {}),
    ...(r ? { root: { mode: number(r, 'mode', what, { integer: true }), uid: number(r, 'uid', what, { integer: true }), gid: number(r, 'gid', what, { integer: true }), mtime: string(r, 'mtime', what) } } : {}),
  };
}

/** An index entry line, validated. */
export function decodeEntry(o: JsonObject, what: string): IndexEntry {
  const opt = (key: 'path' | 'path64' | 'uname' | 'gname' | 'link' | 'link64' | 'sha256' | 'in') => {
    const v = optString(o, key, what);
    return v === undefined ? {} : { [key]: v };
  };
  const int = (key: string) => number(o, key, what, { integer: true });
  return {
    type: oneOf(o, 'type', INDEX_TYPES, what),
    ...opt('path'),
    ...opt('path64'),
    size: int('size'),
    mode: int('mode'),
    uid: int('uid'),
    gid: int('gid'),
    ...opt('uname'),
    ...opt('gname'),
    mtime: string(o, 'mtime', what),
    ino: int('ino'),
    ...opt('link'),
    ...opt('link64'),
    ...opt('sha256'),
    offset: int('offset'),
    span: int('span'),
    ...opt('in'),
  };
}

/** The text of an entry line (fields in the order the entry has them). */
export function entryLine(e: IndexEntry): string {
  return `${JSON.stringify({ kind: 'entry', ...e })}\n`;
}

/** The text of a deletion line. */
export function deletedLine(e: Pick<IndexEntry, 'path' | 'path64'>): string {
  return `${JSON.stringify({ kind: 'deleted', ...(e.path !== undefined ? { path: e.path } : { path64: e.path64 }) })}\n`;
}

/**
 * Tree order of two relative paths (raw bytes, '/' between names): the walk's order. It is
 * byte order with '/' counted below every other byte: at the first name that differs the
 * smaller name's subtree comes first, and a directory comes before what is under it.
 */
export function treeOrder(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    return (x === 0x2f ? -1 : x) - (y === 0x2f ? -1 : y);
  }
  return a.length - b.length;
}

/** `treeOrder` of two path keys (latin1 strings of the path bytes, as the extractor keys them). */
export function treeOrderOfKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return (x === 0x2f ? -1 : x) - (y === 0x2f ? -1 : y);
  }
  return a.length - b.length;
}

/** Where a line's placeholder is: in a line not yet written, or at a byte of the file. */
export interface Hole {
  gen: number;
  part: number;
  charAt: number;
  bytePos: number;
}

/**
 * Lines appended to a scratch file, written a MiB at a time. A line may hold a placeholder
 * (`addWithHole`) that `fill` replaces later with text of the same length: a file's index line
 * is written when the walk has read the file, its sha256 when the hash worker delivers it, so
 * nothing waits in memory for the worker (it may deliver only at the end of the walk: an
 * incremental that writes little never fills a batch before then).
 */
export class LineFile {
  #fd: number | undefined;
  #parts: string[] = [];
  #partsBytes = 0;
  #partsChars = 0;
  #written = 0;
  #gen = 0;
  holes = 0;
  lines = 0;
  constructor(readonly path: string) {
    this.#fd = openSync(path, 'w', 0o600);
  }
  add(text: string): void {
    this.#parts.push(text);
    this.#partsBytes += Buffer.byteLength(text, 'utf8');
    this.#partsChars += text.length;
    this.lines++;
    if (this.#partsChars >= 1 << 20) this.flush();
  }
  /** Adds `text`, whose characters from `charAt` are a placeholder to `fill` later. */
  addWithHole(text: string, charAt: number): Hole {
    const h = { gen: this.#gen, part: this.#parts.length, charAt, bytePos: this.#written + this.#partsBytes + Buffer.byteLength(text.slice(0, charAt), 'utf8') };
    this.holes++;
    this.add(text);
    return h;
  }
  /** Replaces the placeholder of `h` with `value` (ASCII, as long as the placeholder). */
  fill(h: Hole, value: string): void {
    if (this.#fd === undefined) throw new DbsError('INTERNAL', 'an index line was completed after its file was closed');
    if (h.gen === this.#gen) {
      const t = this.#parts[h.part]!;
      this.#parts[h.part] = t.slice(0, h.charAt) + value + t.slice(h.charAt + value.length);
    } else {
      const b = Buffer.from(value, 'latin1');
      for (let off = 0; off < b.length; ) off += writeSync(this.#fd, b, off, b.length - off, h.bytePos + off);
    }
    this.holes--;
  }
  flush(): void {
    if (this.#parts.length && this.#fd !== undefined) {
      const b = Buffer.from(this.#parts.join(''), 'utf8');
      for (let off = 0; off < b.length; ) off += writeSync(this.#fd, b, off, b.length - off, this.#written + off);
      this.#written += b.length;
    }
    this.#parts = [];
    this.#partsBytes = 0;
    this.#partsChars = 0;
    this.#gen++;
  }
  close(): void {
    if (this.#fd === undefined) return;
    this.flush();
    closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/** Says whether the line at bytes [s, e) of `b` is wanted (a `SyncLines` that passes over the rest). */
export type LineSelect = (b: Buffer, s: number, e: number) => boolean;

/**
 * The lines of a local file, read synchronously a MiB at a time. With `select`, only the lines
 * it takes are decoded into strings; the others are passed over as bytes (and still counted,
 * so `lineNo` stays the line's number in the file).
 */
export class SyncLines {
  #fd: number | undefined;
  #chunk = Buffer.allocUnsafe(1 << 20);
  #lines: string[] = [];
  #i = 0;
  /** The bytes after the last newline read (a line, or a character, cut by the chunk's end). */
  #cut: [number, number] = [0, 0];
  #eof = false;
  /** With `select`: the whole lines read, and where the next one starts. */
  #region: Buffer | undefined;
  #pos = 0;
  lineNo = 0;
  constructor(
    path: string,
    readonly select?: LineSelect,
  ) {
    this.#fd = openSync(path, 'r');
  }

  /**
   * The next run of whole lines (without the newline after the last one), null at the end: a
   * view of the chunk, valid until the next call (which moves the cut line to the chunk's start
   * and reads after it: no copy of the lines).
   */
  #read(): Buffer | null {
    let have = this.#cut[1] - this.#cut[0];
    if (have) this.#chunk.copyWithin(0, this.#cut[0], this.#cut[1]);
    this.#cut = [0, 0];
    for (;;) {
      if (this.#eof || this.#fd === undefined) return null;
      if (have === this.#chunk.length) this.#chunk = Buffer.concat([this.#chunk, Buffer.allocUnsafe(this.#chunk.length)]); // a line longer than the chunk
      const n = readSync(this.#fd, this.#chunk, have, this.#chunk.length - have, null);
      if (n === 0) {
        this.#eof = true;
        return have ? this.#chunk.subarray(0, have) : null;
      }
      const end = have + n;
      const last = this.#chunk.lastIndexOf(0x0a, end - 1);
      if (last < have) {
        have = end;
        continue;
      }
      this.#cut = [last + 1, end];
      return this.#chunk.subarray(0, last);
    }
  }

  /** The next line (without its newline), null at the end. */
  next(): string | null {
    if (this.select) return this.#nextSelected(this.select);
    while (this.#i >= this.#lines.length) {
      const run = this.#read();
      if (run === null) return null;
      this.#lines = run.toString('utf8').split('\n');
      this.#i = 0;
    }
    this.lineNo++;
    return this.#lines[this.#i++]!;
  }

  #nextSelected(select: LineSelect): string | null {
    while (this.nextBytes()) {
      const a = this.at;
      if (select(a.b, a.s, a.e)) return a.b.toString('utf8', a.s, a.e);
    }
    return null;
  }

  /** The line `nextBytes` found: bytes [s, e) of `b`, valid until the next read. */
  readonly at: { b: Buffer; s: number; e: number } = { b: Buffer.alloc(0), s: 0, e: 0 };

  /**
   * To the next line without decoding it (`at`), false at the end: for readers that look at a
   * few bytes of most lines. Not to be mixed with `next` on one reader, except through `select`.
   */
  nextBytes(): boolean {
    for (;;) {
      const r = this.#region;
      if (r && this.#pos <= r.length) {
        const s = this.#pos;
        let e = r.indexOf(0x0a, s);
        if (e < 0) e = r.length;
        this.#pos = e + 1;
        this.lineNo++;
        this.at.b = r;
        this.at.s = s;
        this.at.e = e;
        return true;
      }
      const run = this.#read();
      if (run === null) return false;
      this.#region = run;
      this.#pos = 0;
    }
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}

function pathBytes(e: Pick<IndexEntry, 'path' | 'path64'>): Buffer {
  return e.path !== undefined ? Buffer.from(e.path, 'utf8') : Buffer.from(e.path64!, 'base64');
}

/**
 * A parent's index entries, walked forward in tree order alongside the walk. `at(rel)` gives
 * the parent's entry of `rel` (after passing the ones before it: gone since the parent), and
 * `keep(type)` says the walk wrote `rel` with `type` (an entry of another type is gone too:
 * a restore removes it before the new one is made). What `at` gave and nothing kept is gone
 * once the walk moves past it.
 */
export class ParentCursor {
  readonly #lines: SyncLines;
  #cur: { e: IndexEntry; path: Buffer } | null | undefined;
  #prevPath: Buffer | undefined;
  #matched = false;
  gone = 0;

  constructor(
    path: string,
    readonly where: string,
    /** Called for each parent entry gone since the parent, in tree order. */
    readonly onGone: (e: IndexEntry) => void,
  ) {
    this.#lines = new SyncLines(path);
  }

  #next(): { e: IndexEntry; path: Buffer } | null {
    for (;;) {
      const text = this.#lines.next();
      if (text === null) return null;
      if (!text) continue;
      const o = parseLine(text, this.#lines, this.where);
      if (o.kind !== 'entry') continue;
      const e = decodeEntry(o, `${this.where}, line ${this.#lines.lineNo}`);
      const path = pathBytes(e);
      if (this.#prevPath && treeOrder(this.#prevPath, path) >= 0) {
        throw new DbsError('INVALID_RECORD', `${this.where}: line ${this.#lines.lineNo} (${JSON.stringify(path.toString('utf8'))}) is not in tree order`, { hint: DAMAGED });
      }
      this.#prevPath = path;
      return { e, path };
    }
  }

  #head(): { e: IndexEntry; path: Buffer } | null {
    if (this.#cur === undefined) this.#cur = this.#next();
    return this.#cur;
  }

  #drop(): void {
    const c = this.#cur;
    this.#cur = undefined;
    if (c && !this.#matched) {
      this.gone++;
      this.onGone(c.e);
    }
    this.#matched = false;
  }

  /** The parent's entry of `rel`, if it had one. */
  at(rel: Buffer): IndexEntry | undefined {
    for (;;) {
      const h = this.#head();
      if (!h) return undefined;
      const c = treeOrder(h.path, rel);
      if (c > 0) return undefined;
      if (c === 0) return h.e;
      this.#drop();
    }
  }

  /** The walk wrote the path last asked for with `at`, as `type`. */
  keep(rel: Buffer, type: IndexEntry['type']): void {
    const h = this.#head();
    if (h && treeOrder(h.path, rel) === 0) {
      this.#matched = h.e.type === type;
      this.#drop();
    }
  }

  /** The walk ended: every entry not passed yet is gone. */
  end(): void {
    while (this.#head()) this.#drop();
    this.#lines.close();
  }

  close(): void {
    this.#lines.close();
  }
}

function parseLine(text: string, lines: SyncLines, where: string): JsonObject {
  try {
    return object(JSON.parse(text), `${where}, line ${lines.lineNo}`);
  } catch (cause) {
    if (cause instanceof DbsError) throw cause;
    throw new DbsError('INVALID_RECORD', `${where}: line ${lines.lineNo} is not JSON`, { cause, hint: DAMAGED });
  }
}

/** The header of an index file (its first line; only that line is decoded). */
export function readHeader(path: string, where: string): IndexHeader {
  const lines = new SyncLines(path);
  try {
    const first = lines.nextBytes() ? lines.at.b.toString('utf8', lines.at.s, lines.at.e) : '';
    const o = first ? parseLine(first, lines, where) : undefined;
    if (o?.kind !== 'header') throw new DbsError('RESTORE_FAILED', `${where} has no header`, { hint: 'the backup is damaged; restore another backup' });
    return decodeHeader(o, `the header of ${where}`);
  } finally {
    lines.close();
  }
}

/** The paths an index lists as deleted since its parent, read through the file once. */
export function* deletions(path: string, where: string): Generator<Pick<IndexEntry, 'path' | 'path64'>> {
  // dbs writes each line's kind first: entry lines (nearly all) are passed over as bytes.
  const lines = new SyncLines(path, (b, s, e) => !bytesAt(b, s, e, ENTRY_KIND));
  try {
    for (let text = lines.next(); text !== null; text = lines.next()) {
      if (!text) continue;
      const o = parseLine(text, lines, where);
      if (o.kind !== 'deleted') continue;
      if (typeof o.path === 'string') yield { path: o.path };
      else if (typeof o.path64 === 'string') yield { path64: o.path64 };
      else throw new DbsError('INVALID_RECORD', `${where}: line ${lines.lineNo} is a deletion without a path`, { hint: DAMAGED });
    }
  } finally {
    lines.close();
  }
}

const ENTRY_KIND = Buffer.from('{"kind":"entry",');
const ENTRY_TYPE = Buffer.from('{"kind":"entry","type":"');
const PATH_FIELD = Buffer.from('","path":"');

function bytesAt(b: Buffer, at: number, end: number, what: Buffer): boolean {
  if (at + what.length > end) return false;
  for (let i = 0; i < what.length; i++) if (b[at + i] !== what[i]) return false;
  return true;
}

/** Where the path of an entry line as `entryLine` writes it starts (after `"path":"`), or -1. */
export function pathStart(b: Buffer, s: number, e: number): number {
  if (!bytesAt(b, s, e, ENTRY_TYPE)) return -1;
  const q = b.indexOf(0x22, s + ENTRY_TYPE.length); // the end of the type (a name without quotes)
  return q >= 0 && bytesAt(b, q, e, PATH_FIELD) ? q + PATH_FIELD.length : -1;
}

/**
 * The lines a --path restore parses, picked by comparing bytes where the path of the line is,
 * without decoding it: entries whose path starts with one of the paths (as JSON escapes it,
 * character by character, so a path's escaped form starts with its prefix's; "etcetera" for
 * "etc" too: the caller checks the parsed path), the directories above them (their whole
 * name), and every line not laid out as `entryLine` writes an entry with a UTF-8 path (the
 * header, deletions, path64 entries, another writer's line). A --path restore out of 50,000
 * entries parsed them all in ~300 ms, then tested each decoded line's text in ~50 ms; this
 * passes over them in ~5 ms.
 */
export function pathSelect(paths: string[]): LineSelect {
  const escaped = (p: string) => Buffer.from(JSON.stringify(p).slice(1, -1), 'utf8');
  const under = paths.map(escaped);
  const above = new Set<string>();
  for (const p of paths) {
    const names = p.split('/');
    for (let i = 1; i < names.length; i++) above.add(names.slice(0, i).join('/'));
  }
  const dirs = [...above].map(escaped);
  return (b, s, e) => {
    const at = pathStart(b, s, e);
    if (at < 0) return true;
    for (const n of under) if (bytesAt(b, at, e, n)) return true;
    for (const n of dirs) if (bytesAt(b, at, e, n) && b[at + n.length] === 0x22) return true;
    return false;
  };
}

/**
 * The entries of an index file, in its order, read through it once; with `select` (`pathSelect`)
 * only those of the lines it takes.
 */
export function* indexEntries(path: string, where: string, select?: LineSelect): Generator<IndexEntry> {
  const lines = new SyncLines(path, select);
  try {
    for (let text = lines.next(); text !== null; text = lines.next()) {
      if (!text) continue;
      const o = parseLine(text, lines, where);
      if (o.kind === 'entry') yield decodeEntry(o, `${where}, line ${lines.lineNo}`);
    }
  } finally {
    lines.close();
  }
}

const IN_FIELD = Buffer.from(',"in":"');
const OFFSET_FIELD = Buffer.from(',"offset":');
const SHA_FIELD = Buffer.from(',"sha256":"');
const IN_OLDER = 'in an older backup';

/**
 * The offset and sha256 of an entry line as `entryLine` writes it, read where they are without
 * decoding the line (JSON.parse of every line was ~0.3 s of a 50,000-file restore, with its
 * garbage); IN_OLDER for a line with an `in` field (its bytes are in an older backup); null for
 * a line not laid out so (the caller parses it). Inside a JSON string every quote is escaped,
 * so `,"offset":` and the others can only be those fields, and each is found searching back
 * from the line's end (`in` and `sha256` come last, in that order of search).
 */
export function ownFields(b: Buffer, s: number, e: number): { offset: number; sha256?: string } | typeof IN_OLDER | null {
  if (!bytesAt(b, s, e, ENTRY_TYPE) || b[e - 1] !== 0x7d) return null;
  // A view of the line: a search back from its end stops at its start (lastIndexOf over the
  // whole chunk went back through every line before it when a field was not there).
  const v = b.subarray(s, e);
  if (v.lastIndexOf(IN_FIELD) >= 0) return IN_OLDER;
  const at = v.lastIndexOf(OFFSET_FIELD);
  if (at < 0) return null;
  let offset = 0;
  let i = at + OFFSET_FIELD.length;
  const digits = i;
  for (; i < v.length && v[i]! >= 0x30 && v[i]! <= 0x39; i++) offset = offset * 10 + (v[i]! - 0x30);
  if (i === digits || i - digits > 15 || v[i] !== 0x2c || (v[digits] === 0x30 && i - digits > 1)) return null;
  const sh = v.lastIndexOf(SHA_FIELD);
  if (sh < at) return { offset };
  const h = sh + SHA_FIELD.length;
  if (h + 64 >= v.length || v[h + 64] !== 0x22) return null;
  for (let k = h; k < h + 64; k++) {
    const c = v[k]!;
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return null;
  }
  return { offset, sha256: v.toString('latin1', h, h + 64) };
}

/**
 * The content hashes of the entries whose bytes are in this backup's own tar, walked forward
 * alongside it: their index lines are in the tar's order, and each names where its entry
 * starts (`offset`).
 */
export class OwnHashes {
  readonly #lines: SyncLines;
  #cur: { offset: number; sha256?: string } | null | undefined;
  constructor(
    path: string,
    readonly where: string,
  ) {
    this.#lines = new SyncLines(path);
  }

  #next(): { offset: number; sha256?: string } | null {
    const lines = this.#lines;
    while (lines.nextBytes()) {
      const { b, s, e } = lines.at;
      if (s === e) continue;
      // A line as entryLine writes it is read where its fields are (ownFields); any other is parsed.
      const own = ownFields(b, s, e);
      if (own === IN_OLDER) continue;
      if (own) return own;
      const o = parseLine(b.toString('utf8', s, e), lines, this.where);
      if (o.kind !== 'entry') continue;
      const entry = decodeEntry(o, `${this.where}, line ${lines.lineNo}`);
      if (entry.in === undefined) return entry;
    }
    return null;
  }

  /** The sha256 the index gives the entry that starts at `offset` of the tar, if any. */
  at(offset: number): string | undefined {
    for (;;) {
      if (this.#cur === undefined) this.#cur = this.#next();
      const c = this.#cur;
      if (!c || c.offset > offset) return undefined;
      this.#cur = undefined;
      if (c.offset === offset) return c.sha256;
    }
  }

  close(): void {
    this.#lines.close();
  }
}
