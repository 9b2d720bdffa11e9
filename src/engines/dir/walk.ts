// The backup side: walks a tree (symlinks never followed; --one-file-system; --include and
// --exclude) and yields it as a pax tar, while it records every entry for the index. An
// incremental compares each entry with its parent's index (type, size, mtime ns, inode, mode,
// owner, link target) and writes only what changed; directories are always written (a few
// hundred bytes each, they carry their mode and mtime). Files that change while read, vanish
// or cannot be read are reported per file, never left as a silent hole.
import { isUtf8 } from 'node:buffer';
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { matchesGlob } from 'node:path';
import { userInfo } from 'node:os';
import { DbsError } from '../../errors.js';
import { lend } from '../../pipeline/lend.js';
import { ContentHasher, sharedBatch } from './hasher.js';
import { entryLine, type Hole, type LineFile, type ParentCursor } from './index-stream.js';
import { END_OF_ARCHIVE, HeaderEncoder, padding, type EntryType } from './tar.js';
import type { DirFacts, DirSelection, IndexEntry } from './types.js';

type Stat = ReturnType<typeof lstatBig>;
const lstatBig = (p: Buffer) => lstatSync(p, { bigint: true });

/**
 * Output goes out in chunks of this size; file contents are read straight into them (no copy
 * per file, little garbage). The reads are synchronous: a tree in the page cache reads faster
 * so than through the thread pool, which then is free for the compressor.
 */
const BATCH = 4 * 1024 * 1024; // = the framed compressor's segment: a chunk is a frame, uncopied
/** Given-back batches kept for reuse. */
const FREE = 8;
/** A file's sha256 in its index line until the hash worker gives it (a placeholder of its length). */
const NO_HASH_YET = '0'.repeat(64);

export interface WalkOptions {
  root: string;
  selection: DirSelection;
  /** The parent's index, walked alongside (incrementals), and the parent's backup id. */
  parent?: { id: string; cursor: ParentCursor };
  /** Gets each entry's index line, in tree order (a file's sha256 filled in when it is hashed). */
  index: LineFile;
  warn(message: string): void;
  signal: AbortSignal;
}

export function pathKey(e: Pick<IndexEntry, 'path' | 'path64'>): string {
  return e.path !== undefined ? e.path : `\0${e.path64}`;
}
export function entryPath(e: Pick<IndexEntry, 'path' | 'path64'>): Buffer {
  return e.path !== undefined ? Buffer.from(e.path, 'utf8') : Buffer.from(e.path64!, 'base64');
}
function named(b: Buffer, key: 'path' | 'link'): Record<string, string> {
  return isUtf8(b) ? { [key]: b.toString('utf8') } : { [`${key}64`]: b.toString('base64') };
}

const names = new Map<string, string | undefined>();
/** The user and group names of ids (from /etc/passwd and /etc/group), cached. */
function nameOf(kind: 'u' | 'g', id: number): string | undefined {
  const k = `${kind}${id}`;
  if (names.has(k)) return names.get(k);
  let n: string | undefined;
  if (kind === 'u' && id === process.getuid?.()) n = userInfo().username;
  else {
    let file = '';
    try {
      file = readFileSync(kind === 'u' ? '/etc/passwd' : '/etc/group', 'utf8');
    } catch {
      // no names
    }
    n = file.split('\n').map((l) => l.split(':')).find((f) => f[2] === String(id))?.[0];
  }
  names.set(k, n);
  return n;
}

export class TreeWalk {
  readonly facts: Required<Pick<DirFacts, 'entries' | 'files' | 'dirs' | 'symlinks' | 'hardlinks' | 'bytes' | 'written' | 'unchanged' | 'changed' | 'vanished' | 'unreadable' | 'skipped'>> = {
    entries: 0, files: 0, dirs: 0, symlinks: 0, hardlinks: 0, bytes: 0, written: 0, unchanged: 0, changed: 0, vanished: 0, unreadable: 0, skipped: 0,
  };
  root?: { mode: number; uid: number; gid: number; mtime: string };
  #offset = 0;
  /** Shared memory: the hash worker reads the file bytes where the compressor does. */
  #buf: Buffer = sharedBatch(BATCH);
  readonly #hasher = new ContentHasher();
  #len = 0;
  /** Batches the compressor gave back (pipeline/lend.ts), filled again. */
  readonly #free: Buffer[] = [];
  #rootDev = 0n;
  /** First path of each inode with more than one link: dev:ino -> path, and whether its data went into this tar. */
  readonly #links = new Map<string, { path: Buffer; written: boolean }>();
  readonly #rootBuf: Buffer;
  readonly #headers = new HeaderEncoder();

  constructor(readonly o: WalkOptions) {
    this.#rootBuf = Buffer.from(o.root.replace(/\/+$/, ''), 'utf8');
  }

  #abs(rel: Buffer): Buffer {
    return rel.length ? Buffer.concat([this.#rootBuf, Buffer.from('/'), rel]) : this.#rootBuf;
  }

  /** Copies `b` into the output; yields the chunks that filled up. */
  *#emit(b: Buffer): Generator<Buffer> {
    let pos = 0;
    while (pos < b.length) {
      const k = b.copy(this.#buf, this.#len, pos);
      pos += k;
      this.#len += k;
      this.#offset += k;
      if (this.#len === BATCH) yield* this.#drain();
    }
  }
  /** `n` zero bytes (content of file `id`, when given: a file that shrank while read). */
  *#zeros(n: number, id?: number): Generator<Buffer> {
    let left = n;
    while (left > 0) {
      const k = Math.min(left, BATCH - this.#len);
      this.#buf.fill(0, this.#len, this.#len + k);
      if (id !== undefined) this.#hasher.range(id, this.#len, this.#len + k);
      this.#len += k;
      this.#offset += k;
      left -= k;
      if (this.#len === BATCH) yield* this.#drain();
    }
  }
  *#drain(last = false): Generator<Buffer> {
    if (!this.#len) return;
    this.#hasher.batch(this.#buf, this.#len, last);
    const out = this.#len === BATCH ? lend(this.#buf, (b) => this.#free.length < FREE && this.#free.push(b)) : this.#buf.subarray(0, this.#len);
    const again = this.#free.pop();
    this.#buf = last ? Buffer.alloc(0) : again ? this.#hasher.reusable(again) : sharedBatch(BATCH);
    this.#len = 0;
    yield out;
  }

  /** Waits for the content hashes; every entry's line is complete after this. */
  async finishHashes(): Promise<void> {
    await this.#hasher.finish();
    if (this.o.index.holes) throw new DbsError('INTERNAL', `${this.o.index.holes} index lines still wait for a content hash`);
  }

  #push(e: IndexEntry): void {
    this.o.index.add(entryLine(e));
  }

  /** Stops hashing (the backup failed). */
  stopHashes(): void {
    this.#hasher.stop();
  }

  #excluded(rel: string, base: string): boolean {
    return this.o.selection.exclude.some((g) => matchesGlob(rel, g) || (!g.includes('/') && matchesGlob(base, g)));
  }
  #included(rel: string, base: string): boolean {
    const inc = this.o.selection.include;
    if (inc.length === 0) return true;
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const pre = parts.slice(0, i).join('/');
      if (inc.some((g) => matchesGlob(pre, g) || (!g.includes('/') && matchesGlob(i === parts.length ? base : parts[i - 1]!, g)))) return true;
    }
    return false;
  }

  /** Yields the tar, ending with the end-of-archive blocks. */
  *tar(): Generator<Buffer> {
    let st: Stat;
    try {
      st = lstatBig(this.#rootBuf);
    } catch (e) {
      throw (e as NodeJS.ErrnoException).code === 'ENOENT' ? new DbsError('SOURCE_NOT_FOUND', `the directory ${this.o.root} does not exist`, { hint: 'check the path in dir:///PATH' }) : e;
    }
    if (!st.isDirectory()) throw new DbsError('INVALID_ARGUMENT', `${this.o.root} is not a directory`, { hint: 'point dir:///PATH at a directory' });
    this.#rootDev = st.dev;
    this.root = { mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), mtime: mtimeOf(st) };
    yield* this.#dir(Buffer.alloc(0), []);
    yield* this.#emit(END_OF_ARCHIVE);
    yield* this.#drain(true);
  }

  /**
   * `pending`: ancestors not yet written (with --include, a directory is written once something
   * under it is). `self`: this directory's own entry, written once it could be listed: one that
   * vanished or cannot be read is not in the backup (as its warning says), not an empty directory.
   */
  *#dir(rel: Buffer, pending: { rel: Buffer; st: Stat }[], self?: Stat): Generator<Buffer> {
    this.o.signal.throwIfAborted();
    let list: Buffer[];
    try {
      list = readdirSync(this.#abs(rel), { encoding: 'buffer' }).sort(Buffer.compare);
    } catch (e) {
      yield* this.#problem(rel, e as NodeJS.ErrnoException, 'directory');
      return;
    }
    if (self) {
      yield* this.#flushPending(pending);
      yield* this.#entry(rel, self, 'dir');
      pending = [];
    }
    const children = list.map((n) => (rel.length ? Buffer.concat([rel, Buffer.from('/'), n]) : n));
    const stats = children.map((c) => {
      try {
        return lstatBig(this.#abs(c));
      } catch (e) {
        return e as NodeJS.ErrnoException;
      }
    });
    for (let i = 0; i < children.length; i++) {
      const child = children[i]!;
      const st = stats[i]!;
      if (st instanceof Error) {
        yield* this.#problem(child, st, 'entry');
        continue;
      }
      const relStr = child.toString('utf8');
      const base = list[i]!.toString('utf8');
      if (this.#excluded(relStr, base)) continue;
      if (st.isDirectory()) {
        const mine = { rel: child, st };
        if (this.#included(relStr, base)) {
          if (!this.o.selection.oneFileSystem || st.dev === this.#rootDev) yield* this.#dir(child, pending, st);
          else {
            yield* this.#flushPending(pending); // a mount point: kept, not entered
            yield* this.#entry(child, st, 'dir');
          }
        } else if (!this.o.selection.oneFileSystem || st.dev === this.#rootDev) {
          yield* this.#dir(child, [...pending, mine]);
        }
        continue;
      }
      if (!this.#included(relStr, base)) continue;
      if (st.isFile() || st.isSymbolicLink()) {
        yield* this.#flushPending(pending);
        yield* this.#entry(child, st, st.isFile() ? 'file' : 'symlink');
      } else {
        this.facts.skipped++;
        this.o.warn(`${this.#show(child)}: a socket, fifo or device, not backed up`);
      }
    }
  }

  *#flushPending(pending: { rel: Buffer; st: Stat }[]): Generator<Buffer> {
    while (pending.length) {
      const p = pending.shift()!;
      yield* this.#entry(p.rel, p.st, 'dir');
    }
  }

  #show(rel: Buffer): string {
    return JSON.stringify(rel.toString('utf8'));
  }

  *#problem(rel: Buffer, e: NodeJS.ErrnoException, what: string): Generator<Buffer> {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') {
      this.facts.vanished++;
      this.o.warn(`${this.#show(rel)} vanished while the backup ran`);
      return;
    }
    this.facts.unreadable++;
    if (!this.o.selection.skipUnreadable) {
      throw new DbsError('BACKUP_FAILED', `cannot read ${what} ${this.#show(rel)} in ${this.o.root}: ${e.message}`, { hint: 'fix its permissions, exclude it (--exclude), or pass --skip-unreadable to back up the rest' });
    }
    this.o.warn(`${this.#show(rel)} cannot be read (${e.code ?? e.message}): not in this backup`);
    yield* [];
  }

  *#entry(rel: Buffer, st: Stat, kind: EntryType): Generator<Buffer> {
    let type: EntryType = kind;
    let link: Buffer | undefined;
    const devIno = `${st.dev}:${st.ino}`;
    let firstOfInode: { path: Buffer; written: boolean } | undefined;
    if (kind === 'symlink') {
      try {
        link = readlinkSync(this.#abs(rel), { encoding: 'buffer' });
      } catch (e) {
        yield* this.#problem(rel, e as NodeJS.ErrnoException, 'symlink');
        return;
      }
    } else if (kind === 'file' && st.nlink > 1n) {
      firstOfInode = this.#links.get(devIno);
      if (firstOfInode) {
        type = 'hardlink';
        link = firstOfInode.path;
      }
    }
    const mt = mtimeParts(st);
    const uname = nameOf('u', Number(st.uid));
    const gname = nameOf('g', Number(st.gid));
    const e: IndexEntry = {
      type,
      ...named(rel, 'path'),
      size: type === 'file' ? Number(st.size) : 0,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      ...(uname ? { uname } : {}),
      ...(gname ? { gname } : {}),
      mtime: mt.text,
      ino: Number(st.ino),
      ...(link ? named(link, 'link') : {}),
      offset: 0,
      span: 0,
    };
    const counts = this.facts;
    const prev = this.o.parent?.cursor.at(rel);
    // Unchanged since the parent (a hard link also needs its file unchanged): not written.
    const same = prev && type !== 'dir' && prev.type === e.type && prev.size === e.size && prev.mtime === e.mtime && prev.ino === e.ino && prev.mode === e.mode && prev.uid === e.uid && prev.gid === e.gid && prev.link === e.link && prev.link64 === e.link64 && !(type === 'hardlink' && firstOfInode?.written);
    if (kind === 'file' && st.nlink > 1n && !firstOfInode) this.#links.set(devIno, { path: rel, written: !same });
    counts.entries++;
    counts[type === 'file' ? 'files' : type === 'dir' ? 'dirs' : type === 'symlink' ? 'symlinks' : 'hardlinks']++;
    if (same) {
      counts.unchanged++;
      counts.bytes += e.size;
      this.o.parent!.cursor.keep(rel, type);
      this.#push({ ...e, ...(prev.sha256 ? { sha256: prev.sha256 } : {}), offset: prev.offset, span: prev.span, in: prev.in ?? this.o.parent!.id });
      return;
    }
    if (type !== 'file') {
      const h = this.#headers.encode({ name: rel, type, mode: e.mode, uid: e.uid, gid: e.gid, size: 0, mtimeSec: mt.sec, mtimeNsec: mt.nsec, linkname: link, uname, gname });
      e.offset = this.#offset;
      e.span = h.length;
      counts.written++;
      this.o.parent?.cursor.keep(rel, type);
      this.#push(e);
      yield* this.#emit(h);
      return;
    }
    // A regular file: open first (it may be gone or unreadable), header, content, then check
    // that it did not change while read.
    let fd: number;
    try {
      fd = openSync(this.#abs(rel), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      counts.entries--;
      counts.files--;
      if (firstOfInode === undefined && st.nlink > 1n) this.#links.delete(devIno);
      yield* this.#problem(rel, err as NodeJS.ErrnoException, 'file');
      return;
    }
    try {
      const h = this.#headers.encode({ name: rel, type: 'file', mode: e.mode, uid: e.uid, gid: e.gid, size: e.size, mtimeSec: mt.sec, mtimeNsec: mt.nsec, uname, gname });
      e.offset = this.#offset;
      yield* this.#emit(h);
      let hole: Hole | undefined;
      const id = this.#hasher.open((hex) => {
        if (hole) this.o.index.fill(hole, hex);
        else e.sha256 = hex; // hashed before its line was written (its last batch went out while the walk read on)
      });
      let left = e.size;
      let short = false;
      while (left > 0) {
        const room = Math.min(left, BATCH - this.#len);
        let got: number;
        try {
          got = readSync(fd, this.#buf, this.#len, room, null);
        } catch (err) {
          throw new DbsError('BACKUP_FAILED', `reading ${this.#show(rel)} failed: ${(err as Error).message}`, { cause: err, hint: 'check the disk; exclude the file with --exclude' });
        }
        if (got === 0) {
          // The file shrank while read: the entry keeps its announced size (zeros), and it is said.
          short = true;
          yield* this.#zeros(left, id);
          break;
        }
        this.#hasher.range(id, this.#len, this.#len + got);
        this.#len += got;
        this.#offset += got;
        left -= got;
        if (this.#len === BATCH) yield* this.#drain();
      }
      this.#hasher.close(id);
      yield* this.#zeros(padding(e.size));
      e.span = this.#offset - e.offset;
      const after = fstatSync(fd, { bigint: true });
      if (short || after.size !== st.size || after.mtimeNs !== st.mtimeNs) {
        counts.changed++;
        this.o.warn(`${this.#show(rel)} changed while it was read (${after.size === st.size ? 'written to, same size' : `size ${st.size} -> ${after.size}`}); the backup holds the bytes read, the next backup takes it again`);
        e.mtime = '0.000000000'; // so that the next incremental takes it again
      }
      counts.bytes += e.size;
      counts.written++;
      this.o.parent?.cursor.keep(rel, type);
      if (e.sha256) this.#push(e);
      else {
        const line = entryLine({ ...e, sha256: NO_HASH_YET });
        hole = this.o.index.addWithHole(line, line.indexOf(',"sha256":"') + 11);
      }
    } finally {
      closeSync(fd);
    }
  }
}

function mtimeParts(st: Stat): { sec: number; nsec: number; text: string } {
  const ns = st.mtimeNs;
  let sec = ns / 1_000_000_000n;
  let rem = ns % 1_000_000_000n;
  if (rem < 0n) {
    sec -= 1n;
    rem += 1_000_000_000n;
  }
  const nsec = Number(rem);
  return { sec: Number(sec), nsec, text: `${sec}.${String(nsec).padStart(9, '0')}` };
}
function mtimeOf(st: Stat): string {
  return mtimeParts(st).text;
}

export function splitMtime(m: string): { mtimeSec: number; mtimeNsec: number } {
  const [s, n] = m.split('.');
  return { mtimeSec: Number(s), mtimeNsec: Number(n ?? 0) };
}
