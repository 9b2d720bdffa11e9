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
  linkname?: Buffer;
  uname?: string;
  gname?: string;
}

const MAX_OCTAL = (len: number): number => 8 ** (len - 1) - 1;

function isAscii(b: Buffer): boolean {
  for (const c of b) if (c >= 0x80 || c === 0) return false;
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function octal(buf: Buffer, off: number, len: number, v: number): void {
  buf.write(`${v.toString(8).padStart(len - 1, '0')}\0`, off, len, 'ascii');
}

function ustar(name: Buffer, typeflag: string, h: Pick<TarHeader, 'mode' | 'uid' | 'gid' | 'size' | 'mtimeSec'> & { linkname?: Buffer; uname?: string; gname?: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  name.copy(b, 0, 0, Math.min(name.length, 100));
  octal(b, 100, 8, h.mode & 0o7777);
  octal(b, 108, 8, h.uid <= MAX_OCTAL(8) ? h.uid : 0);
  octal(b, 116, 8, h.gid <= MAX_OCTAL(8) ? h.gid : 0);
  octal(b, 124, 12, h.size <= MAX_OCTAL(12) ? h.size : 0);
  octal(b, 136, 12, Math.max(0, Math.min(h.mtimeSec, MAX_OCTAL(12))));
  b.write(typeflag, 156, 1, 'ascii');
  h.linkname?.copy(b, 157, 0, Math.min(h.linkname.length, 100));
  b.write('ustar\u000000', 257, 8, 'binary');
  if (h.uname) b.write(h.uname.slice(0, 31), 265, 32, 'utf8');
  if (h.gname) b.write(h.gname.slice(0, 31), 297, 32, 'utf8');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return b;
}

/** The header blocks of an entry (a pax header first when needed). */
export function encodeHeader(h: TarHeader): Buffer {
  const name = h.type === 'dir' ? Buffer.concat([h.name, Buffer.from('/')]) : h.name;
  const recs: Buffer[] = [];
  if (name.length > 100 || !isAscii(name)) recs.push(paxRecord('path', name));
  if (h.linkname && (h.linkname.length > 100 || !isAscii(h.linkname))) recs.push(paxRecord('linkpath', h.linkname));
  if (h.size > MAX_OCTAL(12)) recs.push(paxRecord('size', Buffer.from(String(h.size))));
  if (h.uid > MAX_OCTAL(8)) recs.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > MAX_OCTAL(8)) recs.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (h.mtimeNsec !== 0 || h.mtimeSec < 0 || h.mtimeSec > MAX_OCTAL(12)) recs.push(paxRecord('mtime', Buffer.from(`${h.mtimeSec}.${String(h.mtimeNsec).padStart(9, '0')}`)));
  const uname = h.uname && isAscii(Buffer.from(h.uname)) && h.uname.length < 32 ? h.uname : undefined;
  const gname = h.gname && isAscii(Buffer.from(h.gname)) && h.gname.length < 32 ? h.gname : undefined;
  if (h.uname && !uname) recs.push(paxRecord('uname', Buffer.from(h.uname)));
  if (h.gname && !gname) recs.push(paxRecord('gname', Buffer.from(h.gname)));
  const main = ustar(name, TYPEFLAG[h.type], { ...h, ...(uname ? { uname } : { uname: undefined }), ...(gname ? { gname } : { gname: undefined }) });
  if (recs.length === 0) return main;
  const pax = Buffer.concat(recs);
  const base = name.subarray(name.lastIndexOf(0x2f, name.length - 2) + 1);
  const paxName = Buffer.from(`PaxHeaders/${isAscii(base) ? base.toString('latin1') : 'entry'}`.slice(0, 99), 'latin1');
  return Buffer.concat([ustar(paxName, 'x', { mode: 0o644, uid: 0, gid: 0, size: pax.length, mtimeSec: 0 }), pax, Buffer.alloc(padding(pax.length)), main]);
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

  /** Exactly n bytes, or fewer at the end of the stream. */
  async pull(n: number): Promise<Buffer> {
    await this.#fill(n);
    const take = Math.min(n, this.#len);
    const out = Buffer.alloc(take);
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

  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n)) void _;
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
  const s = b.toString('latin1', off, off + len).replace(/[\0 ]+$/g, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new Error(`not an octal number: ${JSON.stringify(s)}`);
  return parseInt(s, 8);
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
    if (b.every((c) => c === 0)) return undefined;
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
      name,
      type,
      mode: fields.mode,
      uid: num('uid', fields.uid),
      gid: num('gid', fields.gid),
      size,
      mtimeSec,
      mtimeNsec,
      ...(linkname ? { linkname } : {}),
      ...(uname ? { uname } : {}),
      ...(gname ? { gname } : {}),
    };
  }
}
