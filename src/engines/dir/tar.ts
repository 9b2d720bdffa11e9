// POSIX pax tar (IEEE 1003.1-2001 "pax" interchange format): a ustar header per entry, preceded
// by a pax extended header ('x') when a field does not fit ustar or needs more precision (mtime
// nanoseconds, names over 100 bytes or not ASCII, big sizes or ids). Names are bytes: a name
// that is not UTF-8 is written with hdrcharset=BINARY, as GNU tar does. GNU tar and bsdtar read
// what this writes. The reader takes the same subset (regular files, directories, symlinks,
// hard links, pax 'x'/'g' headers, GNU base-256 numbers) and refuses any other entry type.
import { DbsError } from '../../errors.js';

export const BLOCK = 512;
export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink';
const TYPEFLAG: Record<EntryType, string> = { file: '0', dir: '5', symlink: '2', hardlink: '1' };

export interface TarHeader {
  /** Path relative to the archive root, without a leading "./"; directories without the trailing "/". */
  name: Buffer;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds and nanoseconds since the epoch. */
  mtimeSec: number;
  mtimeNsec: number;
  linkname?: Buffer | undefined;
  uname?: string | undefined;
  gname?: string | undefined;
}

const MAX_OCTAL = (len: number): number => 8 ** (len - 1) - 1;

function isAscii(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! >= 0x80 || b[i] === 0) return false;
  return true;
}
const asciiNames = new Map<string, boolean>();
/** A user or group name that fits ustar's 32-byte field as ASCII (cached: a tree has few names). */
function fitsUstar(name: string): boolean {
  let v = asciiNames.get(name);
  if (v === undefined) {
    v = name.length < 32 && isAscii(Buffer.from(name));
    if (asciiNames.size < 10_000) asciiNames.set(name, v);
  }
  return v;
}

function digits(n: number): number {
  return String(n).length;
}

/**
 * Writes tar headers into one reused scratch buffer: no allocation per entry (a tree of 50,000
 * files made 4 buffers and a dozen strings per entry before; the headers were a fifth of a
 * snapshot's CPU). `encode` returns a view of the scratch, valid until the next call.
 */
export class HeaderEncoder {
  #b = Buffer.alloc(64 * 1024);
  #at = 0;

  #room(n: number): void {
    if (this.#at + n <= this.#b.length) return;
    const bigger = Buffer.alloc(Math.max(this.#b.length * 2, this.#at + n + BLOCK));
    this.#b.copy(bigger, 0, 0, this.#at);
    this.#b = bigger;
  }

  #bytes(v: Buffer): void {
    this.#room(v.length);
    v.copy(this.#b, this.#at);
    this.#at += v.length;
  }

  #latin1(s: string): void {
    this.#room(s.length);
    this.#at += this.#b.write(s, this.#at, 'latin1');
  }

  /** One pax record "LEN key=value\n"; `value` a string (ASCII) or bytes; `slash` appends "/". */
  #record(key: string, value: string | Buffer, slash = false): void {
    const body = key.length + 3 + value.length + (slash ? 1 : 0); // " key=" ... "\n"
    let len = body + 1;
    while (digits(len) + body !== len) len = digits(len) + body;
    this.#latin1(`${len} ${key}=`);
    if (typeof value === 'string') this.#latin1(value);
    else this.#bytes(value);
    this.#latin1(slash ? '/\n' : '\n');
  }

  #octal(off: number, len: number, v: number): void {
    const b = this.#b;
    let x = v;
    for (let i = len - 2; i >= 0; i--) {
      b[off + i] = 0x30 + (x % 8);
      x = Math.floor(x / 8);
    }
    b[off + len - 1] = 0;
  }

  /** A ustar block at `off`; `name` is `name` + "/" when `slash`. */
  #ustar(off: number, name: Buffer | string, slash: boolean, typeflag: number, h: { mode: number; uid: number; gid: number; size: number; mtimeSec: number; linkname?: Buffer | undefined; uname?: string | undefined; gname?: string | undefined }): void {
    const b = this.#b;
    b.fill(0, off, off + BLOCK);
    if (typeof name === 'string') b.write(name, off, 100, 'latin1');
    else {
      const n = name.copy(b, off, 0, Math.min(name.length, 100));
      if (slash && n < 100) b[off + n] = 0x2f;
    }
    this.#octal(off + 100, 8, h.mode & 0o7777);
    this.#octal(off + 108, 8, h.uid <= MAX_OCTAL(8) ? h.uid : 0);
    this.#octal(off + 116, 8, h.gid <= MAX_OCTAL(8) ? h.gid : 0);
    this.#octal(off + 124, 12, h.size <= MAX_OCTAL(12) ? h.size : 0);
    this.#octal(off + 136, 12, Math.max(0, Math.min(h.mtimeSec, MAX_OCTAL(12))));
    b[off + 156] = typeflag;
    h.linkname?.copy(b, off + 157, 0, Math.min(h.linkname.length, 100));
    b.write('ustar\u000000', off + 257, 8, 'latin1');
    if (h.uname) b.write(h.uname.slice(0, 31), off + 265, 32, 'utf8');
    if (h.gname) b.write(h.gname.slice(0, 31), off + 297, 32, 'utf8');
    b.fill(0x20, off + 148, off + 156);
    let sum = 0;
    for (let i = off; i < off + BLOCK; i++) sum += b[i]!;
    this.#octal(off + 148, 7, sum);
    b[off + 155] = 0x20;
  }

  /** The header blocks of an entry (a pax header first when needed), as a view of the scratch. */
  encode(h: TarHeader): Buffer {
    const slash = h.type === 'dir';
    const nameLen = h.name.length + (slash ? 1 : 0);
    const longName = nameLen > 100 || !isAscii(h.name);
    const longLink = h.linkname !== undefined && (h.linkname.length > 100 || !isAscii(h.linkname));
    const uname = h.uname && fitsUstar(h.uname) ? h.uname : undefined;
    const gname = h.gname && fitsUstar(h.gname) ? h.gname : undefined;
    const needMtime = h.mtimeNsec !== 0 || h.mtimeSec < 0 || h.mtimeSec > MAX_OCTAL(12);
    const pax = longName || longLink || h.size > MAX_OCTAL(12) || h.uid > MAX_OCTAL(8) || h.gid > MAX_OCTAL(8) || needMtime || (h.uname !== undefined && h.uname !== '' && !uname) || (h.gname !== undefined && h.gname !== '' && !gname);
    const main = { mode: h.mode, uid: h.uid, gid: h.gid, size: h.size, mtimeSec: h.mtimeSec, linkname: h.linkname, uname, gname };
    const flag = TYPEFLAG[h.type].charCodeAt(0);
    if (!pax) {
      this.#at = BLOCK;
      this.#room(0);
      this.#ustar(0, h.name, slash, flag, main);
      return this.#b.subarray(0, BLOCK);
    }
    // The records go first (after room for the 'x' block), then the 'x' block, padding, main block.
    this.#at = BLOCK;
    this.#room(BLOCK);
    if (longName) this.#record('path', h.name, slash);
    if (longLink) this.#record('linkpath', h.linkname!);
    if (h.size > MAX_OCTAL(12)) this.#record('size', String(h.size));
    if (h.uid > MAX_OCTAL(8)) this.#record('uid', String(h.uid));
    if (h.gid > MAX_OCTAL(8)) this.#record('gid', String(h.gid));
    if (needMtime) this.#record('mtime', `${h.mtimeSec}.${String(h.mtimeNsec).padStart(9, '0')}`);
    if (h.uname && !uname) this.#record('uname', Buffer.from(h.uname));
    if (h.gname && !gname) this.#record('gname', Buffer.from(h.gname));
    const paxLen = this.#at - BLOCK;
    const pad = padding(paxLen);
    this.#room(pad + BLOCK);
    this.#b.fill(0, this.#at, this.#at + pad);
    const mainAt = this.#at + pad;
    this.#at = mainAt + BLOCK;
    // The 'x' block's name: PaxHeaders/ and the entry's base name (with its "/" for a directory).
    const cut = h.name.lastIndexOf(0x2f, h.name.length - 1) + 1;
    const base = h.name.subarray(cut);
    const paxName = `PaxHeaders/${isAscii(base) ? base.toString('latin1') + (slash ? '/' : '') : 'entry'}`.slice(0, 99);
    this.#ustar(0, paxName, false, 0x78, { mode: 0o644, uid: 0, gid: 0, size: paxLen, mtimeSec: 0 });
    this.#ustar(mainAt, h.name, slash, flag, main);
    return this.#b.subarray(0, this.#at);
  }
}

/** The header blocks of an entry, as a new buffer (HeaderEncoder reuses one). */
export function encodeHeader(h: TarHeader): Buffer {
  return Buffer.from(new HeaderEncoder().encode(h));
}

export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Two zero blocks: the end of an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

// ---------------------------------------------------------------------------------------------
// reading

/** Pulls exact byte counts out of a chunk stream and counts the offset. */
export class BytePuller {
  #chunks: Buffer[] = [];
  #len = 0;
  #done = false;
  readonly #it: AsyncIterator<Buffer>;
  constructor(
    src: AsyncIterable<Buffer>,
    /** Raw offset of the first byte of `src` in the whole archive. */
    public offset = 0,
  ) {
    this.#it = src[Symbol.asyncIterator]();
  }

  async #fill(n: number): Promise<boolean> {
    while (this.#len < n && !this.#done) {
      const r = await this.#it.next();
      if (r.done) this.#done = true;
      else if (r.value.length) {
        this.#chunks.push(r.value);
        this.#len += r.value.length;
      }
    }
    return this.#len >= n;
  }

  /**
   * Exactly n bytes, or fewer at the end of the stream: a view of the stream's chunk when they
   * lie in one (no copy, no allocation: a tar of small files is mostly such pulls), else a
   * copy. The chunks are never written again by their producer, so a view stays valid.
   */
  async pull(n: number): Promise<Buffer> {
    if (this.#len < n) await this.#fill(n);
    const first = this.#chunks[0];
    if (first && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#len -= n;
      this.offset += n;
      return out;
    }
    const take = Math.min(n, this.#len);
    const out = Buffer.allocUnsafe(take);
    let pos = 0;
    while (pos < take) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, take - pos);
      c.copy(out, pos, 0, k);
      pos += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#len -= take;
    this.offset += take;
    return out;
  }

  /** n bytes as chunks (views, not copies); throws if the stream ends first. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#len === 0 && !(await this.#fill(1))) throw truncated(this.offset);
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, left);
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
      this.#len -= k;
      this.offset += k;
      left -= k;
      yield c.subarray(0, k);
    }
  }

  /** Skips n bytes; throws if the stream ends first. */
  async skip(n: number): Promise<void> {
    if (n === 0) return;
    if (this.#len < n && !(await this.#fill(n))) {
      for await (const _ of this.take(n)) void _; // throws where the stream ends
      return;
    }
    let left = n;
    while (left > 0) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, left);
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
      left -= k;
    }
    this.#len -= n;
    this.offset += n;
  }
}

function truncated(at: number): DbsError {
  return new DbsError('RESTORE_FAILED', `the tar stream ends inside an entry (at byte ${at})`, { hint: 'the artifact is cut or damaged; restore another backup' });
}

function bad(what: string, at: number): DbsError {
  return new DbsError('RESTORE_FAILED', `the tar stream is not valid at byte ${at}: ${what}`, { hint: 'the artifact is damaged or was not written by dbs; restore another backup' });
}

function readNumber(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) {
    // GNU base-256: big-endian, the first byte's high bit set.
    let v = b[off]! & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    return v;
  }
  // Octal digits, maybe led by spaces and ended by NULs or spaces (a byte loop: this runs five
  // times per entry).
  let i = off;
  const end = off + len;
  while (i < end && b[i] === 0x20) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = b[i]!;
    if (c >= 0x30 && c <= 0x37) {
      v = v * 8 + (c - 0x30);
      digits++;
    } else break;
  }
  for (; i < end; i++) {
    const c = b[i]!;
    if (c !== 0 && c !== 0x20) throw new Error(`not an octal number: ${JSON.stringify(b.toString('latin1', off, end))}`);
  }
  return digits ? v : 0;
}

function zeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function cstr(b: Buffer, off: number, len: number): Buffer {
  const end = b.indexOf(0, off);
  return b.subarray(off, end < 0 || end > off + len ? off + len : end);
}

export interface TarEntry extends TarHeader {
  /** Raw offset of the entry's first header block (its pax header, if any). */
  offset: number;
}

function parsePax(data: Buffer, at: number): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    const len = Number(data.toString('latin1', pos, sp));
    if (sp < 0 || !Number.isSafeInteger(len) || len <= 0 || pos + len > data.length) throw bad('a pax record is malformed', at);
    const rec = data.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw bad('a pax record has no "="', at);
    m.set(rec.toString('utf8', 0, eq), rec.subarray(eq + 1));
    pos += len;
  }
  return m;
}

/** Reads the next entry's headers, or undefined at the end of the archive (or of the stream, when `lenient`). */
export async function readEntry(p: BytePuller, lenient = false): Promise<TarEntry | undefined> {
  const offset = p.offset;
  let pax = new Map<string, Buffer>();
  for (;;) {
    const at = p.offset;
    const b = await p.pull(BLOCK);
    if (b.length === 0 && lenient) return undefined;
    if (b.length < BLOCK) throw truncated(at);
    if (b[0] === 0 && zeroBlock(b)) return undefined;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
    let fields: { mode: number; uid: number; gid: number; size: number; mtime: number; chk: number };
    try {
      fields = { mode: readNumber(b, 100, 8), uid: readNumber(b, 108, 8), gid: readNumber(b, 116, 8), size: readNumber(b, 124, 12), mtime: readNumber(b, 136, 12), chk: readNumber(b, 148, 8) };
    } catch (e) {
      throw bad((e as Error).message, at);
    }
    if (fields.chk !== sum) throw bad('header checksum mismatch', at);
    const flag = String.fromCharCode(b[156]!);
    const size = pax.has('size') ? Number(pax.get('size')!.toString()) : fields.size;
    if (!Number.isSafeInteger(size) || size < 0) throw bad('a bad size', at);
    if (flag === 'x' || flag === 'g') {
      const data = await p.pull(size);
      if (data.length < size) throw truncated(p.offset);
      await p.skip(padding(size));
      if (flag === 'x') pax = new Map([...pax, ...parsePax(data, at)]);
      continue;
    }
    const type = flag === '0' || flag === '\0' || flag === '7' ? 'file' : flag === '5' ? 'dir' : flag === '2' ? 'symlink' : flag === '1' ? 'hardlink' : undefined;
    if (!type) throw bad(`entry type ${JSON.stringify(flag)} is not supported (only files, directories, symlinks, hard links)`, at);
    const magic = b.toString('latin1', 257, 262);
    const prefix = magic === 'ustar' ? cstr(b, 345, 155) : Buffer.alloc(0);
    let name = pax.get('path') ?? (prefix.length ? Buffer.concat([prefix, Buffer.from('/'), cstr(b, 0, 100)]) : cstr(b, 0, 100));
    while (name.length > 1 && name[name.length - 1] === 0x2f) name = name.subarray(0, name.length - 1);
    const linkname = type === 'symlink' || type === 'hardlink' ? (pax.get('linkpath') ?? cstr(b, 157, 100)) : undefined;
    let mtimeSec = fields.mtime;
    let mtimeNsec = 0;
    const pm = pax.get('mtime')?.toString();
    if (pm !== undefined) {
      const m = /^(-?\d+)(?:\.(\d{1,9})\d*)?$/.exec(pm);
      if (!m) throw bad(`pax mtime ${JSON.stringify(pm)}`, at);
      mtimeSec = Number(m[1]);
      mtimeNsec = Number((m[2] ?? '').padEnd(9, '0'));
    }
    const num = (k: string, d: number) => (pax.has(k) ? Number(pax.get(k)!.toString()) : d);
    const uname = pax.get('uname')?.toString() ?? cstr(b, 265, 32).toString('utf8');
    const gname = pax.get('gname')?.toString() ?? cstr(b, 297, 32).toString('utf8');
    return {
      offset,
      // Copies: the header is a view of the stream's chunk, which must not live as long as an entry kept for later (directories).
      name: Buffer.from(name),
      type,
      mode: fields.mode,
      uid: num('uid', fields.uid),
      gid: num('gid', fields.gid),
      size,
      mtimeSec,
      mtimeNsec,
      ...(linkname ? { linkname: Buffer.from(linkname) } : {}),
      ...(uname ? { uname } : {}),
      ...(gname ? { gname } : {}),
    };
  }
}
