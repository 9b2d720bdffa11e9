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

/** The lines of a local file, read synchronously a MiB at a time. */
export class SyncLines {
  #fd: number | undefined;
  readonly #chunk = Buffer.allocUnsafe(1 << 20);
  #lines: string[] = [];
  #i = 0;
  /** Bytes after the last newline read (a line, or a character, cut by the chunk's end). */
  #rest: Buffer = Buffer.alloc(0);
  #eof = false;
  lineNo = 0;
  constructor(path: string) {
    this.#fd = openSync(path, 'r');
  }
  /** The next line (without its newline), null at the end. */
  next(): string | null {
    while (this.#i >= this.#lines.length) {
      if (this.#eof || this.#fd === undefined) return null;
      const n = readSync(this.#fd, this.#chunk, 0, this.#chunk.length, null);
      this.#i = 0;
      if (n === 0) {
        this.#eof = true;
        this.#lines = this.#rest.length ? [this.#rest.toString('utf8')] : [];
        continue;
      }
      const last = this.#chunk.lastIndexOf(0x0a, n - 1);
      if (last < 0) {
        this.#rest = Buffer.concat([this.#rest, this.#chunk.subarray(0, n)]);
        this.#lines = [];
        continue;
      }
      const text = (this.#rest.length ? Buffer.concat([this.#rest, this.#chunk.subarray(0, last)]) : this.#chunk.subarray(0, last)).toString('utf8');
      this.#rest = Buffer.from(this.#chunk.subarray(last + 1, n));
      this.#lines = text.split('\n');
    }
    this.lineNo++;
    return this.#lines[this.#i++]!;
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

/** The header of an index file (its first line). */
export function readHeader(path: string, where: string): IndexHeader {
  const lines = new SyncLines(path);
  try {
    const first = lines.next();
    const o = first ? parseLine(first, lines, where) : undefined;
    if (o?.kind !== 'header') throw new DbsError('RESTORE_FAILED', `${where} has no header`, { hint: 'the backup is damaged; restore another backup' });
    return decodeHeader(o, `the header of ${where}`);
  } finally {
    lines.close();
  }
}

/** The paths an index lists as deleted since its parent, read through the file once. */
export function* deletions(path: string, where: string): Generator<Pick<IndexEntry, 'path' | 'path64'>> {
  const lines = new SyncLines(path);
  try {
    for (let text = lines.next(); text !== null; text = lines.next()) {
      // dbs writes each line's kind first: entry lines (nearly all) are not parsed here.
      if (!text || text.startsWith('{"kind":"entry",')) continue;
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

/**
 * The needle that finds the entry lines whose path is `p` or under it without parsing them:
 * `"path":"P` (P as JSON escapes it, character by character, so a path's escaped form starts
 * with its prefix's). Inside a JSON string every quote is escaped, so the needle can only be a
 * line's own path field.
 */
export function pathNeedle(p: string): string {
  return `"path":${JSON.stringify(p).slice(0, -1)}`;
}

/** A line `indexEntries` must parse: not a plain entry line, a directory, a non-UTF-8 path, or a needle's. */
export function mayHold(text: string, needles: string[]): boolean {
  if (!text.startsWith('{"kind":"entry",') || text.startsWith('{"kind":"entry","type":"dir"') || text.includes('"path64":')) return true;
  for (const n of needles) if (text.includes(n)) return true;
  return false;
}

/**
 * The entries of an index file, in its order, read through it once. With `needles`, entry lines
 * that cannot be under any of those paths (`pathNeedle`) and are not directories are passed over
 * unparsed: a --path restore out of 50,000 entries parsed them all in ~300 ms.
 */
export function* indexEntries(path: string, where: string, needles?: string[]): Generator<IndexEntry> {
  const lines = new SyncLines(path);
  try {
    for (let text = lines.next(); text !== null; text = lines.next()) {
      if (!text || (needles && !mayHold(text, needles))) continue;
      const o = parseLine(text, lines, where);
      if (o.kind === 'entry') yield decodeEntry(o, `${where}, line ${lines.lineNo}`);
    }
  } finally {
    lines.close();
  }
}

/**
 * The content hashes of the entries whose bytes are in this backup's own tar, walked forward
 * alongside it: their index lines are in the tar's order, and each names where its entry
 * starts (`offset`).
 */
export class OwnHashes {
  readonly #lines: SyncLines;
  #cur: IndexEntry | null | undefined;
  constructor(
    path: string,
    readonly where: string,
  ) {
    this.#lines = new SyncLines(path);
  }

  #next(): IndexEntry | null {
    for (let text = this.#lines.next(); text !== null; text = this.#lines.next()) {
      // A line with an `in` field (bytes in an older backup) is passed over unparsed: inside a
      // JSON string every quote is escaped, so `,"in":"` can only be that field.
      if (!text || text.includes(',"in":"')) continue;
      const o = parseLine(text, this.#lines, this.where);
      if (o.kind !== 'entry') continue;
      const e = decodeEntry(o, `${this.where}, line ${this.#lines.lineNo}`);
      if (e.in === undefined) return e;
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
