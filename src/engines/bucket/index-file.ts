// The bucket index (index.ndjson) as a stream, in key order: S3 lists keys in UTF-8 byte order
// and every index dbs writes is in that order, so an incremental merges its listing with the
// parent's index line by line (ParentCursor) and writes its own index as it goes (IndexWriter,
// a file in the run's tmpDir), instead of loading either into a table. Memory stays flat and
// the cost per object is a key comparison.
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { DbsError } from '../../errors.js';
import type { IndexLine } from './types.js';

export type ObjectLine = Extract<IndexLine, { size: number }>;

/**
 * Keys compared in code point order, which is UTF-8 byte order (how S3 lists keys and how
 * SQLite's BINARY collation sorts them). JS's `<` compares UTF-16 code units, which puts
 * U+E000..U+FFFF after the surrogates of code points above U+FFFF; this maps them back.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x = x < 0xe000 ? x + 0x2000 : x - 0x800;
    if (y >= 0xd800) y = y < 0xe000 ? y + 0x2000 : y - 0x800;
    return x - y;
  }
  return a.length - b.length;
}

const DAMAGED = 'the index artifact is damaged; take a new snapshot';
const NEED = Symbol('a batch to read');

/**
 * An object line's text with `"in":ID` added before its top-level "offset" (indexText's field
 * order: in, then offset). The last `,"offset":` of the text is the top-level one: metadata
 * comes before it, only the fixed header names after it, and inside a JSON string a quote is
 * always escaped.
 */
export function withIn(text: string, id: string): string {
  const at = text.lastIndexOf(',"offset":');
  if (at < 0) throw new DbsError('INVALID_RECORD', 'an index line without an offset', { hint: DAMAGED });
  return `${text.slice(0, at)},"in":${JSON.stringify(id)}${text.slice(at)}`;
}

/**
 * One line of an index artifact, checked: an object line, a deletion line, or 'header' (the
 * first line, `{"dbs":"bucket-index",...}`); undefined for an empty line.
 */
export function parseIndexLine(text: string, lineNo: number, where: string): IndexLine | 'header' | undefined {
  if (!text || text === '\r') return undefined;
  let l: IndexLine;
  try {
    l = JSON.parse(text) as IndexLine;
  } catch (cause) {
    throw new DbsError('INVALID_RECORD', `${where}: line ${lineNo} is not JSON`, { cause, hint: DAMAGED });
  }
  if (lineNo === 1 && typeof (l as { dbs?: unknown }).dbs === 'string') return 'header';
  if (typeof l.key !== 'string') throw new DbsError('INVALID_RECORD', `${where}: line ${lineNo} has no key`, { hint: DAMAGED });
  if ('deleted' in l) return l;
  if (typeof l.size !== 'number' || typeof l.etag !== 'string' || typeof l.offset !== 'number') throw new DbsError('INVALID_RECORD', `${where}: line ${lineNo} (${JSON.stringify(l.key)}) lacks size, etag or offset`, { hint: DAMAGED });
  return l;
}

/** The lines of a text stream, a chunk's worth at a time (one await per chunk, not per line). */
export async function* lineBatches(input: Readable): AsyncGenerator<string[]> {
  input.setEncoding('utf8');
  let rest = '';
  for await (const chunk of input as AsyncIterable<string>) {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    if (parts.length) yield parts;
  }
  if (rest) yield [rest];
}

/**
 * The object lines of a parent's index, walked forward in key order alongside a listing: at
 * each listed key, `before(key)` gives the parent objects that sort before it (gone since the
 * parent), in batches, then `take(key)` the parent's line of the key if it has one. `in` is
 * filled in: an object whose bytes were in the parent itself names the parent.
 */
export class ParentCursor {
  readonly #batches: AsyncIterator<string[]>;
  readonly #where: string;
  readonly #parentId: string;
  #batch: string[] = [];
  #i = 0;
  #lineNo = 0;
  #done = false;
  #prev: string | undefined;
  /** The current line, null at the end, undefined when the next one is still to be read. */
  #cur: ObjectLine | null | undefined;
  readonly #texts = new WeakMap<ObjectLine, string>();

  constructor(lines: Readable, where: string, parentId: string) {
    this.#batches = lineBatches(lines)[Symbol.asyncIterator]();
    this.#where = where;
    this.#parentId = parentId;
  }

  /** The next object line if its batch is read already; NEED when a batch must be read first. */
  #nextSync(): ObjectLine | null | typeof NEED {
    for (;;) {
      if (this.#i >= this.#batch.length) return this.#done ? null : NEED;
      const text = this.#batch[this.#i++]!;
      const l = parseIndexLine(text, ++this.#lineNo, this.#where);
      if (l === undefined || l === 'header' || 'deleted' in l) continue;
      if (this.#prev !== undefined && compareKeys(this.#prev, l.key) >= 0) {
        throw new DbsError('INVALID_RECORD', `${this.#where}: line ${this.#lineNo} (${JSON.stringify(l.key)}) is not in key order`, { hint: DAMAGED });
      }
      this.#prev = l.key;
      if (l.in === undefined) {
        l.in = this.#parentId;
        this.#texts.set(l, withIn(text, this.#parentId));
      } else this.#texts.set(l, text);
      return l;
    }
  }

  async #next(): Promise<ObjectLine | null> {
    for (;;) {
      const l = this.#nextSync();
      if (l !== NEED) return l;
      const r = await this.#batches.next();
      if (r.done) this.#done = true;
      else {
        this.#batch = r.value;
        this.#i = 0;
      }
    }
  }

  /**
   * Up to `max` parent objects before `key` (all that remain for null): gone since the parent
   * when the listing is at `key`. Without a promise while the lines are read already (all but
   * one call in a batch's worth: an incremental makes two of these calls per listed object).
   */
  before(key: string | null, max: number): ObjectLine[] | Promise<ObjectLine[]> {
    const gone: ObjectLine[] = [];
    for (;;) {
      if (this.#cur === undefined) {
        const n = this.#nextSync();
        if (n === NEED) return this.#beforeAsync(key, max, gone);
        this.#cur = n;
      }
      if (!this.#cur || gone.length >= max || (key !== null && compareKeys(this.#cur.key, key) >= 0)) return gone;
      gone.push(this.#cur);
      this.#cur = undefined;
    }
  }

  async #beforeAsync(key: string | null, max: number, gone: ObjectLine[]): Promise<ObjectLine[]> {
    for (;;) {
      if (this.#cur === undefined) this.#cur = await this.#next();
      if (!this.#cur || gone.length >= max || (key !== null && compareKeys(this.#cur.key, key) >= 0)) return gone;
      gone.push(this.#cur);
      this.#cur = undefined;
    }
  }

  /** The parent's line of `key`, once `before(key)` returned nothing more (a promise only when a batch must be read). */
  take(key: string): ObjectLine | undefined | Promise<ObjectLine | undefined> {
    if (this.#cur === undefined) {
      const n = this.#nextSync();
      if (n === NEED) return this.#next().then((l) => ((this.#cur = l), this.take(key)));
      this.#cur = n;
    }
    if (!this.#cur || this.#cur.key !== key) return undefined;
    const l = this.#cur;
    this.#cur = undefined;
    return l;
  }

  /** The index text of a line this cursor gave (with its `in`): what the new index copies for an unchanged object. */
  textOf(l: ObjectLine): string | undefined {
    return this.#texts.get(l);
  }

  close(): void {
    void this.#batches.return?.(undefined);
  }
}

/** An index line as it is written: fields in a fixed order, `in` only for bytes in an older backup. */
export function indexText(l: IndexLine): string {
  if ('deleted' in l) return JSON.stringify({ key: l.key, deleted: true });
  return JSON.stringify({
    key: l.key,
    size: l.size,
    etag: l.etag,
    ...(l.contentType !== undefined ? { contentType: l.contentType } : {}),
    metadata: l.metadata,
    lastModified: l.lastModified,
    ...(l.in !== undefined ? { in: l.in } : {}),
    offset: l.offset,
    ...(l.headers !== undefined ? { headers: l.headers } : {}),
  });
}

/** Split keys a backup records at most (BucketFacts.splits). */
export const SPLIT_KEYS = 64;

/**
 * Index lines appended to a file, 64 KiB at a time; the file is then stored as the index
 * artifact. It also keeps every n-th object key (n doubling as the list grows), so `splits()`
 * gives keys spread evenly over the list in bounded memory.
 */
export class IndexWriter {
  readonly path: string;
  #fd: number;
  #parts: string[] = [];
  #bytes = 0;
  #last: string | undefined;
  #sample: string[] = [];
  #every = 1;
  #objects = 0;

  constructor(path: string, head: Record<string, unknown>) {
    this.path = path;
    this.#fd = openSync(path, 'wx', 0o600);
    this.#push(JSON.stringify(head));
  }

  /** Appends a line; keys must come in key order (the listing's), or the index could not be merged with later. */
  add(l: IndexLine, where: string, text?: string): void {
    if (this.#last !== undefined && compareKeys(this.#last, l.key) >= 0) {
      throw new DbsError('BACKUP_FAILED', `${where} listed ${JSON.stringify(l.key)} after ${JSON.stringify(this.#last)}`, { hint: 'S3 lists keys in UTF-8 byte order and dbs relies on it; this server does not (use an S3-compatible server that does)' });
    }
    this.#last = l.key;
    this.#push(text ?? indexText(l));
    if ('deleted' in l) return;
    // A copy: a key read from a listing is a slice of its page's XML, which it would keep alive.
    if (this.#objects++ % this.#every === 0) this.#sample.push(Buffer.from(l.key).toString());
    if (this.#sample.length >= 2 * SPLIT_KEYS) {
      this.#sample = this.#sample.filter((_, i) => i % 2 === 0);
      this.#every *= 2;
    }
  }

  /** Object keys spread evenly over what was added (every n-th; fewer than SPLIT_KEYS * 2). */
  splits(): string[] {
    return this.#sample.length > SPLIT_KEYS ? this.#sample.filter((_, i) => i % 2 === 0) : [...this.#sample];
  }

  #push(text: string): void {
    this.#parts.push(text);
    this.#bytes += text.length + 1;
    if (this.#bytes >= 64 * 1024) this.#flush();
  }

  #flush(): void {
    if (!this.#parts.length) return;
    const buf = Buffer.from(`${this.#parts.join('\n')}\n`);
    for (let at = 0; at < buf.length; ) at += writeSync(this.#fd, buf, at);
    this.#parts = [];
    this.#bytes = 0;
  }

  /** Writes what is buffered and closes the file. */
  end(): void {
    this.#flush();
    this.close();
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    closeSync(fd);
  }
}
