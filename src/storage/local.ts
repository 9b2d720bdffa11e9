// Local directory pool: a put writes a temp file beside its target, fsyncs it and renames
// it into place (or hard-links it, for create-if-absent), then fsyncs the directory. openFile()
// hands out such a temp file for a child process to write. The kind (`localKind`) declares
// the config ({ path }), how `pool bind` flags become one and how the catalog's copy decodes.
import { createReadStream, createWriteStream, statSync, write as fsWrite, writev as fsWritev } from 'node:fs';
import { link, mkdir, open, readdir, rename, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DbsError } from '../errors.js';
import { invalid, object, string } from '../decode.js';
import { validateKey, validatePrefix } from './layout.js';
import { iterateBody, throwIfAborted } from './body.js';
import type { DriverKind, FileTarget, GetOptions, IncompleteUpload, ObjectInfo, OpOptions, PoolCapabilities, PoolDriver, PullSource, PutBody, PutOptions, PutResult } from './types.js';

/**
 * The fs of a WriteStream on a file handle's fd. Even with autoClose off, a WriteStream closes
 * its fd when it is destroyed (an error, an abort: pipeline destroys it), and then the handle
 * closed the same number again. In between, another open may have reused the number (a
 * /proc read, a catalog file), so that second close closed a stranger's file: Node aborted the
 * process on it once ("Assertion failed: uv_fs_close" in readFileSync). The handle is the fd's
 * only owner: the stream's close does nothing.
 */
const FD_OWNED_ELSEWHERE = { write: fsWrite, writev: fsWritev, close: (_fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => cb(null) };

export interface LocalPoolConfig {
  /** Absolute path of the pool root (an existing directory). */
  path: string;
}

function validateLocalPath(path: string | undefined): string {
  if (!path) throw new DbsError('USAGE', 'a local pool needs --path DIR', { hint: 'e.g. --path /var/backups/dbs' });
  if (!isAbsolute(path)) {
    throw new DbsError('INVALID_PATH', `--path ${JSON.stringify(path)} is relative`, { hint: 'give an absolute path, e.g. --path "$PWD/backups"' });
  }
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new DbsError('INVALID_PATH', `--path ${path} does not exist`, { hint: `create it first: mkdir -p ${path}` });
  }
  if (!st.isDirectory()) throw new DbsError('INVALID_PATH', `--path ${path} is not a directory`, { hint: 'give a directory' });
  return path.replace(/\/+$/, '') || '/';
}

export const localKind: DriverKind<LocalPoolConfig> = {
  type: 'local',
  flags: ['path'],
  credentials: false,
  fromBind: (f) => ({ path: validateLocalPath(f.path) }),
  decode(data, what) {
    const path = string(object(data, what), 'path', what);
    if (!isAbsolute(path)) throw invalid(what, `path: expected an absolute path, got ${JSON.stringify(path)}`);
    return { path };
  },
  location: (c) => c.path,
  fields: () => [],
  open: async (c) => new LocalDriver(c.path),
};

const TMP_PREFIX = '.dbs-tmp-';

function fsError(e: unknown, what: string): DbsError {
  const err = e as NodeJS.ErrnoException;
  if (err instanceof DbsError) return err;
  switch (err.code) {
    case 'ENOENT':
      return new DbsError('OBJECT_NOT_FOUND', `${what}: not found`, { cause: e });
    case 'EEXIST':
      return new DbsError('ALREADY_EXISTS', `${what}: already exists`, { cause: e });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new DbsError('PERMISSION_DENIED', `${what}: permission denied (${err.code})`, {
        cause: e,
        hint: 'check that the dbs user may write to the pool directory',
      });
    case 'ENOSPC':
    case 'EDQUOT':
      return new DbsError('IO_ERROR', `${what}: no space left on the pool's disk`, { cause: e, hint: 'free space or move the pool' });
    default:
      return new DbsError('IO_ERROR', `${what}: ${err.message}`, { cause: e });
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class LocalDriver implements PoolDriver {
  readonly type = 'local' as const;
  readonly capabilities: PoolCapabilities = { createIfAbsent: true, atomicPut: true, rangedReads: true, incompleteUploads: true, localFiles: true, serverSideCopy: false };
  readonly location: string;
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
    this.location = root;
  }

  #path(key: string): string {
    return join(this.#root, ...validateKey(key).split('/'));
  }

  /**
   * The pool root must exist: creating it would write backups onto whatever filesystem is
   * underneath an unmounted disk.
   */
  async #checkRoot(): Promise<void> {
    try {
      if ((await stat(this.#root)).isDirectory()) return;
    } catch {
      // fall through
    }
    throw new DbsError('POOL_UNREACHABLE', `the pool directory ${this.#root} is missing`, {
      hint: 'is its disk mounted? dbs does not create a missing pool root',
    });
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<PutResult> {
    const file = await this.#open(key, options);
    try {
      // A WriteStream batches queued chunks into writev() calls and lets the producer run
      // ahead by its buffer, instead of one awaited write() per chunk.
      const source = body instanceof Readable ? body : Readable.from(iterateBody(body), { objectMode: false });
      // By fd, not handle.createWriteStream(): with autoClose off, a FileHandle's stream keeps
      // a reference on it that makes handle.close() wait forever (Node 24).
      const out = createWriteStream('', { fd: file.fd, autoClose: false, highWaterMark: 4 << 20, fs: FD_OWNED_ELSEWHERE });
      await pipeline(source, out, { signal: options.signal });
      throwIfAborted(options.signal);
      return await file.commit();
    } catch (e) {
      await file.abort();
      if (options.signal?.aborted) throw options.signal.reason ?? e;
      throw fsError(e, `${this.location}: cannot write ${key}`);
    }
  }

  openFile(key: string, options: PutOptions = {}): Promise<FileTarget> {
    return this.#open(key, options);
  }

  /**
   * A temp file beside the target (invisible to list/get). commit(): fsync, then rename it into
   * place (or hard-link it, for create-if-absent), then fsync the directory.
   */
  async #open(key: string, options: PutOptions): Promise<FileTarget> {
    const target = this.#path(key);
    const dir = dirname(target);
    const tmp = join(dir, `${TMP_PREFIX}${randomBytes(6).toString('hex')}-${target.slice(dir.length + 1)}`);
    throwIfAborted(options.signal);
    if (options.ifAbsent && (await this.stat(key))) {
      throw new DbsError('ALREADY_EXISTS', `${this.location}: ${key} already exists`);
    }
    await this.#checkRoot();
    let handle: FileHandle | undefined;
    // Another process's delete may prune the (empty) folders while we create them or before
    // our open: two `pool check`s at once each remove their probe and dbs/probe/ with it.
    // Retry then.
    for (let attempt = 1; !handle; attempt++) {
      try {
        await mkdir(dir, { recursive: true, mode: 0o700 });
      } catch (e) {
        // A parent pruned meanwhile: ENOENT, or ENOTDIR from a recursive mkdir racing the rmdir
        // (seen under load); a real file in the way stays in the way and fails the 10th attempt.
        const code = (e as NodeJS.ErrnoException).code;
        if ((code === 'ENOENT' || code === 'ENOTDIR') && attempt < 10) continue;
        throw fsError(e, `${this.location}: cannot create ${dirname(key)}`);
      }
      try {
        handle = await open(tmp, 'wx', 0o600);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 10) continue;
        throw fsError(e, `${this.location}: cannot write ${key}`);
      }
    }
    let placed = false;
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await handle.close().catch(() => undefined);
    };
    return {
      fd: handle.fd,
      path: tmp,
      commit: async () => {
        try {
          await handle.sync();
          const { size } = await handle.stat();
          await close();
          if (options.ifAbsent) {
            // link(2) fails with EEXIST when the target exists: an atomic create-if-absent.
            await link(tmp, target);
            await unlink(tmp);
          } else {
            await rename(tmp, target);
          }
          placed = true;
          await fsyncDir(dir);
          return { key, size };
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new DbsError('ALREADY_EXISTS', `${this.location}: ${key} already exists`, { cause: e });
          throw fsError(e, `${this.location}: cannot write ${key}`);
        }
      },
      abort: async () => {
        await close();
        if (placed) return;
        await unlink(tmp).catch(() => undefined);
        await this.#pruneEmpty(dir); // a failed first write leaves no empty backup folder
      },
    };
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const path = this.#path(key);
    throwIfAborted(options.signal);
    // Open first so a missing key fails here, not on the first read.
    let fh;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw fsError(e, `${this.location}: cannot read ${key}`);
    }
    const range = options.range;
    return createReadStream('', {
      fd: fh,
      start: range?.start,
      end: range?.end,
      highWaterMark: 1 << 20,
      signal: options.signal,
    } as Parameters<typeof createReadStream>[1]);
  }

  async openPull(key: string): Promise<PullSource> {
    let fh: FileHandle;
    try {
      fh = await open(this.#path(key), 'r');
    } catch (e) {
      throw fsError(e, `${this.location}: cannot read ${key}`);
    }
    const size = (await fh.stat()).size;
    const what = `${this.location}: cannot read ${key}`;
    return {
      size,
      pull: async (buf) => {
        try {
          return (await fh.read(buf, 0, buf.length, null)).bytesRead;
        } catch (e) {
          throw fsError(e, what);
        }
      },
      close: () => fh.close(),
    };
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.#path(key));
      if (!s.isFile()) return undefined;
      return { key, size: s.size, modified: s.mtime };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw fsError(e, `${this.location}: cannot stat ${key}`);
    }
  }

  /** Walks the tree under the prefix's directory in key order, yielding files. */
  async *#walk(prefix: string, wantTemp: boolean): AsyncIterable<{ key: string; path: string }> {
    validatePrefix(prefix);
    const cut = prefix.lastIndexOf('/');
    const baseKey = cut >= 0 ? prefix.slice(0, cut + 1) : '';
    // Depth-first in sorted order gives keys in lexicographic order for '/'-separated keys
    // as long as directories are visited where their name sorts ("a/" after "a-b").
    const visit = async function* (this: LocalDriver, dirKey: string): AsyncIterable<{ key: string; path: string }> {
      const dirPath = join(this.#root, ...dirKey.split('/').filter(Boolean));
      let entries;
      try {
        entries = await readdir(dirPath, { withFileTypes: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw fsError(e, `${this.location}: cannot list ${dirKey || '/'}`);
      }
      const names = entries
        .filter((d) => d.isFile() || d.isDirectory())
        .map((d) => ({ name: d.isDirectory() ? `${d.name}/` : d.name, dir: d.isDirectory(), raw: d.name }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      for (const n of names) {
        const key = dirKey + n.name;
        if (n.dir) {
          if (key.startsWith(prefix) || prefix.startsWith(key)) yield* visit.call(this, key);
        } else {
          const isTemp = n.raw.startsWith(TMP_PREFIX);
          if (isTemp !== wantTemp) continue;
          if (wantTemp ? key.startsWith(prefix.slice(0, cut + 1)) : key.startsWith(prefix)) yield { key, path: join(dirPath, n.raw) };
        }
      }
    };
    yield* visit.call(this, baseKey);
  }

  async *list(prefix: string, options: OpOptions = {}): AsyncIterable<ObjectInfo> {
    for await (const f of this.#walk(prefix, false)) {
      throwIfAborted(options.signal);
      try {
        const s = await stat(f.path);
        yield { key: f.key, size: s.size, modified: s.mtime };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, `${this.location}: cannot stat ${f.key}`);
      }
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.#path(key);
    try {
      await unlink(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw fsError(e, `${this.location}: cannot delete ${key}`);
    }
    await this.#pruneEmpty(dirname(path));
  }

  /** Removes `dir` and its parents while they are empty, up to (not including) the pool root. */
  async #pruneEmpty(dir: string): Promise<void> {
    while (dir.startsWith(this.#root + sep) && dir !== this.#root) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
      dir = dirname(dir);
    }
  }

  async *listIncomplete(prefix: string): AsyncIterable<IncompleteUpload> {
    for await (const f of this.#walk(prefix, true)) {
      const s = await stat(f.path).catch(() => undefined);
      yield { key: f.key, id: f.path, started: s?.mtime };
    }
  }

  async abortIncomplete(prefix: string, options: OpOptions & { olderThan?: Date } = {}): Promise<number> {
    let n = 0;
    for await (const u of this.listIncomplete(prefix)) {
      if (options.olderThan && u.started && u.started >= options.olderThan) continue;
      await unlink(u.id).catch(() => undefined);
      n++;
    }
    return n;
  }

  async close(): Promise<void> {}
}
