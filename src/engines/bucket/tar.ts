// A minimal POSIX pax tar writer (IEEE Std 1003.1-2001 `pax` format, which GNU tar, bsdtar and
// tar-stream read): each object is a pax extended header (typeflag 'x') holding its full key
// as `path`, its exact mtime and the object's S3 attributes as vendor records (`DBS.s3.*`),
// then a ustar header and the bytes, padded to 512. Written as plain buffers so the caller's
// async generator gives the stream natural backpressure and knows every entry's offset.
const BLOCK = 512;
/** The ustar size field holds 11 octal digits: below 8 GiB. Above, base-256 + a pax size record. */
const MAX_OCTAL = 0o77777777777;

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

export function paddingFor(size: number): Buffer {
  const r = size % BLOCK;
  return Buffer.alloc(r === 0 ? 0 : BLOCK - r);
}

function record(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const len = Buffer.byteLength(body);
  let n = len + String(len).length;
  if (String(n).length !== String(len).length) n = len + String(n).length;
  return `${n}${body}`;
}

function octal(buf: Buffer, value: number, offset: number, width: number): void {
  buf.write(value.toString(8).padStart(width - 1, '0') + '\0', offset, width, 'ascii');
}

function sizeField(buf: Buffer, size: number): void {
  if (size <= MAX_OCTAL) return octal(buf, size, 124, 12);
  // GNU base-256: high bit of the first byte set, the value big-endian in the rest.
  buf[124] = 0x80;
  let v = BigInt(size);
  for (let i = 135; i > 124; i--) {
    buf[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/** An ASCII stand-in of at most 99 bytes for the ustar name field (the pax path is the real name). */
function shortName(path: string): string {
  const ascii = path.replace(/[^\x20-\x7e]/g, '_');
  return ascii.length <= 99 ? ascii : ascii.slice(ascii.length - 99);
}

function ustar(name: string, size: number, mtime: number, type: string): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(name, 0, 100, 'ascii');
  octal(b, type === '5' ? 0o755 : 0o644, 100, 8);
  octal(b, 0, 108, 8);
  octal(b, 0, 116, 8);
  sizeField(b, size);
  octal(b, Math.max(0, Math.floor(mtime / 1000)), 136, 12);
  b.write(type, 156, 1, 'ascii');
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return b;
}

export interface TarEntry {
  /** The entry's path (an object key, relative to the backed-up prefix). */
  path: string;
  size: number;
  /** Milliseconds since the epoch. */
  mtime: number;
  /** A folder marker (a key ending in "/", no bytes) is a directory entry. */
  directory: boolean;
  /** Vendor records, e.g. DBS.s3.content-type. */
  records: Record<string, string>;
}

/** The pax header and the ustar header of an entry: what precedes its bytes. */
export function entryHeader(e: TarEntry): Buffer {
  let pax = record('path', e.path) + record('mtime', (e.mtime / 1000).toFixed(3));
  if (e.size > MAX_OCTAL) pax += record('size', String(e.size));
  for (const [k, v] of Object.entries(e.records)) pax += record(k, v);
  const paxBytes = Buffer.from(pax, 'utf8');
  const name = shortName(e.path);
  const type = e.directory ? '5' : '0';
  return Buffer.concat([ustar(shortName(`PaxHeaders/${name}`), paxBytes.length, e.mtime, 'x'), paxBytes, paddingFor(paxBytes.length), ustar(name, e.size, e.mtime, type)]);
}
