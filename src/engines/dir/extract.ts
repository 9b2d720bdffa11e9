// The restore side: writes tar entries into a build directory that dbs created itself, never
// trusting a name: no "..", no absolute path, no NUL, and never through a symlink (every
// ancestor is checked to be a real directory, files are created with O_NOFOLLOW|O_EXCL).
// Entries are written synchronously, in archive order; directory modes and mtimes are set at
// the end (deepest first), so a read-only directory still receives its children.
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, closeSync, constants, fchmodSync, fchownSync, ftruncateSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { DbsError } from '../../errors.js';
import { treeOrderOfKeys } from './index-stream.js';
import { BytePuller, padding, readEntry, type TarEntry } from './tar.js';

/** Files up to this size are read whole, then written while the next entries are read. */
const SMALL = 1024 * 1024;
const ZERO_BLOCK = 64 * 1024;
const EMPTY = Buffer.alloc(0);

export interface Meta {
  mode: number;
  uid: number;
  gid: number;
  mtimeSec: number;
  mtimeNsec: number;
}

function unsafe(name: Buffer, why: string): DbsError {
  return new DbsError('RESTORE_FAILED', `the archive holds an unsafe path ${JSON.stringify(name.toString('utf8'))}: ${why}; nothing was restored`, {
    hint: 'the artifact was not written by dbs or was tampered with; restore another backup',
  });
}

/** The parts of an archive name, or an error for a name that could leave the target. */
export function safeParts(name: Buffer): Buffer[] {
  if (name.includes(0)) throw unsafe(name, 'it contains a NUL byte');
  if (name[0] === 0x2f) throw unsafe(name, 'it is absolute');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= name.length; i++) {
    if (i === name.length || name[i] === 0x2f) {
      const p = name.subarray(start, i);
      start = i + 1;
      if (p.length === 0 || (p.length === 1 && p[0] === 0x2e)) continue;
      if (p.length === 2 && p[0] === 0x2e && p[1] === 0x2e) throw unsafe(name, 'it contains ".."');
      parts.push(p);
    }
  }
  return parts;
}

export class Extractor {
  readonly #root: Buffer;
  /** Directories known to be real directories (created or checked), by their path from the root. */
  readonly #dirs = new Set<string>(['']);
  readonly dirMeta = new Map<string, { path: Buffer; meta: Meta }>();
  /**
   * While `fresh` (the build directory started empty for this tar): the greatest key, in tree
   * order, written so far. Every path that exists is at most that (a parent made on the way is
   * smaller than what it was made for), so a greater key cannot exist yet and needs no lstat.
   * A dbs tar is in tree order, so that is every entry; any other order falls back to lstat.
   * (A set of the written keys did this before: 30-50 MB at 500,000 files.)
   */
  #max: string | undefined;
  fresh = true;
  readonly owner: boolean;
  files = 0;
  bytes = 0;

  /** sha256 of a file's content (by the entry, or its path key), checked as the file is written. */
  expect?: (e: TarEntry, key: string) => string | undefined;

  constructor(root: string) {
    this.#root = Buffer.from(root, 'utf8');
    this.owner = process.getuid?.() === 0;
  }

  #abs(parts: Buffer[]): Buffer {
    if (parts.length === 0) return this.#root;
    const out = Buffer.allocUnsafe(this.#root.length + parts.reduce((n, p) => n + 1 + p.length, 0));
    let at = this.#root.copy(out, 0);
    for (const p of parts) {
      out[at++] = 0x2f;
      at += p.copy(out, at);
    }
    return out;
  }

  /**
   * Every ancestor of `parts` (whose key is `key`) is a real directory (created when missing);
   * never a symlink.
   */
  #parents(parts: Buffer[], key: string, create: boolean, name: Buffer): void {
    // The common case: the parent is known, and a directory is known only once every one of its
    // ancestors was (#clear forgets a directory with what is under it). Its key is `key` without
    // the last name (latin1: a character per byte).
    if (parts.length < 2) return;
    if (this.#dirs.has(key.slice(0, key.length - parts.at(-1)!.length - 1))) return;
    let at = '';
    for (let i = 1; i < parts.length; i++) {
      at = i === 1 ? parts[0]!.toString('latin1') : `${at}/${parts[i - 1]!.toString('latin1')}`;
      if (this.#dirs.has(at)) continue; // the common case: a directory's entries follow it
      const abs = this.#abs(parts.slice(0, i));
      const st = lstatSync(abs, { throwIfNoEntry: false });
      if (!st) {
        if (!create) throw unsafe(name, 'its link target does not exist');
        mkdirSync(abs, { mode: 0o700 });
      } else if (st.isSymbolicLink()) throw unsafe(name, 'it would write through a symlink');
      else if (!st.isDirectory()) throw unsafe(name, 'a parent of it is not a directory');
      this.#dirs.add(at);
    }
  }

  /** Removes what is at `abs` (an older link of the chain), without following a symlink. */
  #clear(abs: Buffer, key: string, keepDir: boolean): boolean {
    if (this.fresh && (this.#max === undefined || treeOrderOfKeys(this.#max, key) < 0)) {
      this.#max = key;
      return false;
    }
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st) return false;
    if (st.isDirectory()) {
      if (keepDir) return true;
      rmSync(abs, { recursive: true, force: true });
      for (const d of [...this.#dirs]) if (d === key || d.startsWith(`${key}/`)) this.#dirs.delete(d);
      return false;
    }
    unlinkSync(abs);
    return false;
  }

  /**
   * Owner, mode and mtime. Synchronous, as are the extractor's other file system calls: the
   * main thread has nothing else to do meanwhile, and each thread-pool round trip was time it
   * sat idle (a 1 GB restore of 5,000 directories idled 1.5 s in awaited mkdirs and metadata).
   */
  #meta(abs: Buffer, m: Meta, isLink: boolean): void {
    if (this.owner) (isLink ? lchownSync : chownSync)(abs, m.uid, m.gid);
    if (!isLink) chmodSync(abs, m.mode & 0o7777);
    const t = utimeOf(m);
    (isLink ? lutimesSync : utimesSync)(abs, t, t);
  }

  /** Deletes a path of the tree (the deletions an incremental lists). */
  async remove(name: Buffer): Promise<void> {
    const parts = safeParts(name);
    if (parts.length === 0) return;
    const key = keyOf(parts);
    try {
      this.#parents(parts, key, false, name);
    } catch {
      return; // a parent is gone already (deleted with its directory)
    }
    this.#clear(this.#abs(parts), key, false);
    this.dirMeta.delete(key);
    for (const k of [...this.dirMeta.keys()]) if (k.startsWith(`${key}/`)) this.dirMeta.delete(k);
  }

  /** Extracts one entry whose headers were read; its data is next in `p`. */
  async entry(e: TarEntry, p: BytePuller): Promise<void> {
    const parts = safeParts(e.name);
    const pad = padding(e.size);
    if (parts.length === 0) {
      // The root itself ("./"): its metadata only.
      if (e.type !== 'dir') throw unsafe(e.name, 'the root is not a directory');
      this.dirMeta.set('', { path: this.#root, meta: e });
      return p.skip(e.size + pad);
    }
    const key = keyOf(parts);
    this.#parents(parts, key, true, e.name);
    const abs = this.#abs(parts);
    if (e.type !== 'file') await p.skip(e.size + pad);
    if (e.type === 'dir') {
      const exists = this.#clear(abs, key, true) || this.#dirs.has(key);
      if (!exists) mkdirSync(abs, { mode: 0o700 });
      this.#dirs.add(key);
      this.dirMeta.set(key, { path: abs, meta: e });
      return;
    }
    if (e.type === 'symlink') {
      this.#clear(abs, key, false);
      symlinkSync(e.linkname!, abs);
      this.#meta(abs, e, true);
      return;
    }
    if (e.type === 'hardlink') {
      const tparts = safeParts(e.linkname!);
      if (tparts.length === 0) throw unsafe(e.linkname!, 'a hard link to the root');
      this.#parents(tparts, keyOf(tparts), false, e.linkname!);
      const target = this.#abs(tparts);
      const st = lstatSync(target, { throwIfNoEntry: false });
      if (!st?.isFile()) throw unsafe(e.linkname!, 'a hard link whose target is not a file restored before it');
      this.#clear(abs, key, false);
      linkSync(target, abs);
      return;
    }
    this.#clear(abs, key, false);
    const want = this.expect?.(e, key);
    const name = e.name;
    if (e.size <= SMALL) {
      // Small files synchronously, metadata through the descriptor: a handful of syscalls
      // each, no thread-pool round trips.
      const data = e.size ? await p.pull(e.size) : EMPTY;
      if (data.length < e.size) throw new DbsError('RESTORE_FAILED', 'the tar stream ends inside a file', { hint: 'the artifact is cut; restore another backup' });
      if (pad) await p.skip(pad);
      if (want && createHash('sha256').update(data).digest('hex') !== want) throw damaged(name);
      const fd = openSync(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        if (data.length) writeSync(fd, data, 0, data.length, 0);
        if (this.owner) fchownSync(fd, e.uid, e.gid);
        fchmodSync(fd, e.mode & 0o7777);
        const t = utimeOf(e);
        futimesSync(fd, t, t);
      } finally {
        closeSync(fd);
      }
      this.files++;
      this.bytes += e.size;
      return;
    }
    // A big file: streamed, all-zero blocks left as holes (sparse files stay sparse).
    const fd = openSync(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    const hash = createHash('sha256');
    try {
      let pos = 0;
      for await (const c of p.take(e.size)) {
        hash.update(c);
        for (let off = 0; off < c.length; off += ZERO_BLOCK) {
          const part = c.subarray(off, off + ZERO_BLOCK);
          if (!isZero(part)) writeSync(fd, part, 0, part.length, pos + off);
        }
        pos += c.length;
      }
      ftruncateSync(fd, e.size);
    } finally {
      closeSync(fd);
    }
    await p.skip(pad);
    if (want && hash.digest('hex') !== want) throw damaged(name);
    this.#meta(abs, e, false);
    this.files++;
    this.bytes += e.size;
  }

  /** Sets a directory's metadata at the end (a parent of a restored path, from the index). */
  dirFromIndex(name: Buffer, meta: Meta): void {
    const parts = safeParts(name);
    const key = keyOf(parts);
    if (this.#dirs.has(key) && !this.dirMeta.has(key)) this.dirMeta.set(key, { path: this.#abs(parts), meta });
  }

  /** Directory metadata, deepest first (after every entry is in). */
  async finish(): Promise<void> {
    const dirs = [...this.dirMeta.entries()].sort((a, b) => b[0].length - a[0].length);
    for (const [, d] of dirs) this.#meta(d.path, d.meta, false);
  }
}

/**
 * The time for utimes(): Node passes a double and libuv truncates it to microseconds, so the
 * middle of the microsecond is passed, which the truncation takes back to it exactly (the
 * archive and the index keep nanoseconds; stock tar restores them).
 */
export function utimeOf(m: { mtimeSec: number; mtimeNsec: number }): number {
  return m.mtimeSec + (Math.floor(m.mtimeNsec / 1000) * 1000 + 500) / 1e9;
}

export function keyOf(parts: Buffer[]): string {
  return parts.length === 1 ? parts[0]!.toString('latin1') : parts.map((p) => p.toString('latin1')).join('/');
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += 8) if (i + 8 <= b.length ? b.readBigUInt64LE(i) !== 0n : b.subarray(i).some((x) => x !== 0)) return false;
  return true;
}

function damaged(name: Buffer): DbsError {
  return new DbsError('RESTORE_FAILED', `the content of ${JSON.stringify(name.toString('utf8'))} does not match its sha256 in the index`, { hint: 'the backup is damaged; restore another backup' });
}

/** Reads a whole tar stream into the extractor; `want(offset)` false skips an entry. */
export async function extractAll(src: AsyncIterable<Buffer>, x: Extractor, o: { startOffset?: number; from?: number; want?: (e: TarEntry) => boolean; stopAfter?: number; signal: AbortSignal }): Promise<void> {
  const p = new BytePuller(src, o.startOffset ?? 0);
  if (o.from !== undefined) await p.skip(o.from - p.offset);
  for (;;) {
    o.signal.throwIfAborted();
    if (o.stopAfter !== undefined && p.offset >= o.stopAfter) return;
    const e = await readEntry(p, o.stopAfter !== undefined);
    if (!e) return;
    if (o.want && !o.want(e)) {
      await p.skip(e.size + padding(e.size));
      continue;
    }
    await x.entry(e, p);
  }
}
