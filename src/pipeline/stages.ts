// Stream stages of the backup path: compress, decompress, hash + count, progress. Every stage
// is a Transform with normal backpressure; nothing is buffered whole.
import { createHash, type Hash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';
import { Duplex, Transform, type Readable, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import * as zlib from 'node:zlib';
import { DbsError } from '../errors.js';
import { programOnPath } from '../which.js';
import { zstdFramesDecompress } from './zstd-frames.js';
import { deathSignalAvailable, spawnChild } from './child.js';

export type Compression = 'zstd' | 'gzip' | 'none';
export const COMPRESSIONS: readonly Compression[] = ['zstd', 'gzip', 'none'];

export function compressionSuffix(c: Compression): string {
  return c === 'zstd' ? '.zst' : c === 'gzip' ? '.gz' : '';
}

// node:zlib has zstd from Node 22.15 / 23.8 on; typed loosely so older typings still build.
const z = zlib as typeof zlib & {
  createZstdCompress?: (o?: { params?: Record<number, number>; chunkSize?: number }) => Transform;
  createZstdDecompress?: (o?: { chunkSize?: number }) => Transform;
  constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number };
};

function needZstd(): never {
  throw new DbsError('TOOL_MISSING', `zstd compression needs Node.js 22.15 or newer (this is ${process.version})`, {
    hint: 'run dbs with a newer Node.js, or choose --compress gzip',
  });
}

/**
 * Output chunk of the zlib streams. zlib's default (16 KiB) makes every chunk a thread-pool
 * round trip: measured on 885 MB of dump-like text, zstd -1 took 4.1 s with 16 KiB, 2.5 s
 * with 1 MiB (the zstd CLI: 2.1 s).
 */
const ZLIB_CHUNK = 1024 * 1024;

/** The zstd program on PATH, if any. */
export function zstdBinary(): string | undefined {
  return programOnPath('zstd');
}

/**
 * pzstd (in the same Debian package as zstd): compresses into independent frames of a few MiB
 * (see zstd-frames.ts for why that matters), any zstd decoder reads its output.
 */
export function pzstdBinary(): string | undefined {
  return programOnPath('pzstd');
}

/** zstd levels the programs accept without --ultra. */
export function zstdLevel(level: number | undefined): number {
  return Math.min(Math.max(level ?? 1, 1), 19);
}

/**
 * zstd through the zstd program: compression then runs in its own process beside the dump
 * tool and Node, instead of chunk by chunk on Node's thread pool. On the 2-core bench machine
 * (441 MB dump) that took a dbs backup from ~4.9 s to ~4.1 s (shell pipeline: ~3.4 s). The
 * child's failure (or a kill) errors the stream; destroying the stream kills the child.
 */
function externalZstd(path: string, level: number): Duplex {
  return new ProcessStage(path, ['-q', `-${level}`, '-c', '--no-progress']);
}

/** A child's stdout socket as Node keeps it (the fields the hand-off needs). */
type PipeSocket = Readable & {
  bytesRead?: number;
  _handle?: { fd?: number; reading?: boolean; readStop?: () => number } | null;
  _readableState?: { reading: boolean };
};

/**
 * Keeps Node from reading a child's stdout pipe until a consumer reads it, so that the pipe can
 * still be handed to another program whole. Call it in the same tick as the spawn.
 *
 * Why: Node's socket on a child's stdout starts reading at once (net.Socket asks for a first
 * read when it gets its handle), and execa with `buffer: false` resumes an unread stdout after
 * one setImmediate, dropping what it reads. A backup tool that wrote before dbs reached the
 * hand-off lost those bytes: a dump stored without its first 3 MB that looked complete
 * (test/storage/hand-off.test.ts writes 15 MB before the sink starts, on every path).
 * The socket is paused (execa then leaves it alone) and its read is stopped; a later consumer
 * (pipe, pipeline, read) starts it again.
 */
export function holdUnread(stream: Readable): void {
  const s = stream as PipeSocket;
  s.pause();
  const h = s._handle;
  if (h?.reading && h.readStop) {
    h.readStop();
    h.reading = false;
    // The constructor's first read is still pending; forget it so the first real read asks again.
    if (s._readableState) s._readableState.reading = false;
  }
}

/** The pipe's fd when `stream` can be handed to a child whole (Node has read none of it). */
export function handOffFd(stream: Readable): number | undefined {
  const s = stream as PipeSocket;
  const fd = s._handle?.fd;
  return typeof fd === 'number' && fd >= 0 && s.bytesRead === 0 ? fd : undefined;
}

/** Throws unless `stream` can be handed to a child whole: bytes Node read would be lost. */
function checkHandOff(stream: Readable): void {
  if (handOffFd(stream) === undefined) {
    const n = (stream as PipeSocket).bytesRead;
    throw new DbsError('INTERNAL', `cannot hand the tool's output to the compressor: ${n === undefined ? 'it is not a pipe' : `Node has read ${n} bytes of it already`}`);
  }
}

/**
 * A filter program as a Duplex: what is written goes to its stdin, its stdout is read. Plain
 * child_process pipes (execa's duplex() measured ~50% slower here). A non-zero exit or a
 * signal errors the stream; destroying the stream kills the program.
 */
export class ProcessStage extends Duplex {
  readonly #child: ChildProcess;
  readonly #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #stderr: { text: string };

  /**
   * With `stdin`, the program reads that stream's pipe directly (fd hand-off; the parent's
   * copy is closed) and the Duplex is only readable in effect: end its writable side at once.
   */
  constructor(path: string, args: string[], o: { stdin?: Readable } = {}) {
    super({ readableHighWaterMark: STAGE_BUFFER, writableHighWaterMark: STAGE_BUFFER });
    if (o.stdin) checkHandOff(o.stdin);
    // Dies with dbs (see child.ts): a compressor blocked on a stalled dump has no other way to learn of it.
    const child = spawnChild(path, args, { stdio: [o.stdin ?? 'pipe', 'pipe', 'pipe'] });
    this.#child = child;
    if (o.stdin) {
      // Our copy of the pipe must go, or the writer never sees its reader close.
      o.stdin.destroy();
      this.end();
    }
    this.#exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    child.on('error', (e) => this.destroy(e));
    child.stdin?.on('error', () => undefined); // EPIPE when the program died: its exit says why
    this.#stderr = keepTail(child.stderr!);
    child.stdout!.on('data', (c: Buffer) => {
      if (!this.push(c)) child.stdout!.pause();
    });
    child.stdout!.once('end', () => {
      void this.#exited.then(({ code, signal }) => {
        if (code === 0) this.push(null);
        else this.destroy(new Error(`${path} failed (${signal ?? `exit ${code}`}): ${this.#stderr.text.trim().slice(-500)}`));
      });
    });
  }

  /** What the program wrote to stderr so far (the last 8 KiB). */
  get stderrText(): string {
    return this.#stderr.text;
  }

  override _read(): void {
    this.#child.stdout!.resume();
  }

  override _write(chunk: Buffer, _e: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#child.stdin!.write(chunk)) cb();
    else this.#child.stdin!.once('drain', () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (!this.#child.stdin) return cb();
    this.#child.stdin.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
    cb(err);
  }
}

/** Keeps the last 8 KiB of a program's stderr: its summary or its error comes at the end. */
function keepTail(stream: Readable): { text: string } {
  const tail = { text: '' };
  stream.on('data', (c: Buffer) => {
    tail.text = (tail.text + c.toString()).slice(-8192);
  });
  return tail;
}

/**
 * A filter program that reads a stream's pipe directly (fd hand-off) and writes into an open
 * file, so its output never crosses Node. With no pipe back to Node, nothing would stop it if
 * dbs died, so it is only offered when the death signal is (setpriv; see child.ts and
 * fileFilterAvailable). `exited` rejects on a non-zero exit or a signal.
 */
export class FileFilter {
  readonly exited: Promise<void>;
  readonly #child: ChildProcess;
  readonly #stderr: { text: string };

  constructor(path: string, args: string[], o: { stdin: Readable; stdoutFd: number }) {
    if (!deathSignalAvailable()) throw new Error('FileFilter needs setpriv on PATH');
    checkHandOff(o.stdin);
    const child = spawnChild(path, args, { stdio: [o.stdin, o.stdoutFd, 'pipe'] });
    this.#child = child;
    o.stdin.destroy(); // our copy of the pipe must go, or the writer never sees its reader close
    this.#stderr = keepTail(child.stderr!);
    this.exited = new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(new Error(`${path} failed (${signal ?? `exit ${code}`}): ${this.#stderr.text.trim().slice(-500)}`));
      });
    });
    this.exited.catch(() => undefined); // observed by the caller; never an unhandled rejection
  }

  /** What the program wrote to stderr so far (the last 8 KiB). */
  get stderrText(): string {
    return this.#stderr.text;
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }
}

/** Whether FileFilter can run here. */
export function fileFilterAvailable(): boolean {
  return deathSignalAvailable();
}

/** Bytes per read when following a file. */
const FOLLOW_CHUNK = 1024 * 1024;
/** How long to wait at the end of a file that is still being written. */
const FOLLOW_POLL_MS = 20;

/**
 * Reads a file while another process appends to it, until `writerDone` settles and the end is
 * reached; rejects if `writerDone` rejects. Each chunk goes to `onChunk` synchronously and the
 * buffer is reused (one 1 MiB buffer: allocating one per read cost ~0.5 s of garbage
 * collection per GB). Reading back what is stored (from the page cache) costs less than
 * carrying the bytes through a pipe into Node and out again.
 */
export async function followFile(path: string, writerDone: Promise<void>, onChunk: (chunk: Buffer) => void, signal?: AbortSignal): Promise<void> {
  let done = false;
  const settled = writerDone.then(
    () => void (done = true),
    () => void (done = true),
  );
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(FOLLOW_CHUNK);
    let pos = 0;
    for (;;) {
      signal?.throwIfAborted();
      const writerGone = done; // read before the read: a read after the writer is gone sees everything
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead > 0) {
        pos += bytesRead;
        onChunk(buf.subarray(0, bytesRead));
      } else if (writerGone) {
        return await writerDone;
      } else {
        await Promise.race([settled, sleep(FOLLOW_POLL_MS)]);
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * Default levels: zstd 1 (the dump tools are CPU-bound and on a small machine every cycle
 * spent compressing is taken from them; on the 1 GB sysbench bench level 3 was 3x slower and
 * not smaller), gzip 6 (gzip's own default). `compressionLevel` raises either.
 */
export function compressStage(c: Compression, level?: number): Transform | Duplex | undefined {
  switch (c) {
    case 'none':
      return undefined;
    case 'gzip':
      return zlib.createGzip({ level: Math.min(level ?? 6, 9), chunkSize: ZLIB_CHUNK });
    case 'zstd': {
      const bin = zstdBinary();
      if (bin) return externalZstd(bin, zstdLevel(level));
      if (!z.createZstdCompress) needZstd();
      const key = z.constants.ZSTD_c_compressionLevel ?? 100;
      return z.createZstdCompress({ params: { [key]: level ?? 1 }, chunkSize: ZLIB_CHUNK } as Parameters<NonNullable<typeof z.createZstdCompress>>[0]);
    }
  }
}

export function decompressStage(c: Compression): Transform | Duplex | undefined {
  switch (c) {
    case 'none':
      return undefined;
    case 'gzip':
      return zlib.createGunzip({ chunkSize: ZLIB_CHUNK });
    case 'zstd':
      if (!z.createZstdDecompress) needZstd();
      // Frame by frame: backups hold many frames (pzstd), which node:zlib alone cannot read.
      return zstdFramesDecompress(ZLIB_CHUNK);
  }
}

/** Buffer between stages, so a slow stage does not hold the others in lock-step. */
export const STAGE_BUFFER = 4 * 1024 * 1024;

/** Counts bytes and computes a SHA-256 of what passes through; read `bytes`/`digest()` after end. */
export class HashCounter extends Transform {
  bytes = 0;
  readonly #hash: Hash = createHash('sha256');
  #digest?: string;

  constructor() {
    super({ highWaterMark: STAGE_BUFFER });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.#hash.update(chunk);
    cb(null, chunk);
  }

  digest(): string {
    this.#digest ??= this.#hash.digest('hex');
    return this.#digest;
  }
}

/** Counts bytes and calls `onBytes(total)` at most every `intervalMs`, and once at the end. */
export class ProgressCounter extends Transform {
  bytes = 0;
  #last = 0;

  constructor(
    readonly onBytes: (total: number) => void,
    readonly intervalMs = 200,
  ) {
    super({ highWaterMark: STAGE_BUFFER });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    const now = Date.now();
    if (now - this.#last >= this.intervalMs) {
      this.#last = now;
      this.onBytes(this.bytes);
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.onBytes(this.bytes);
    cb();
  }
}
