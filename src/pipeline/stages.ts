// Stream stages of the backup path: compress, decompress, hash + count, progress. Every stage
// is a Transform with normal backpressure; nothing is buffered whole.
import { createHash, type Hash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { Duplex, Transform, type Readable, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { DbsError } from '../errors.js';
import { programOnPath } from '../which.js';
import { zstdFramesDecompress } from './zstd-frames.js';

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

/**
 * A filter program as a Duplex: what is written goes to its stdin, its stdout is read. Plain
 * child_process pipes (execa's duplex() measured ~50% slower here). A non-zero exit or a
 * signal errors the stream; destroying the stream kills the program.
 */
export class ProcessStage extends Duplex {
  readonly #child: ChildProcess;
  readonly #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #stderr = '';

  /**
   * With `stdin`, the program reads that stream's pipe directly (fd hand-off; the parent's
   * copy is closed) and the Duplex is only readable in effect: end its writable side at once.
   */
  constructor(path: string, args: string[], o: { stdin?: Readable } = {}) {
    super({ readableHighWaterMark: STAGE_BUFFER, writableHighWaterMark: STAGE_BUFFER });
    const child = spawn(path, args, { stdio: [o.stdin ?? 'pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    this.#child = child;
    if (o.stdin) {
      // Our copy of the pipe must go, or the writer never sees its reader close.
      o.stdin.destroy();
      this.end();
    }
    this.#exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    child.on('error', (e) => this.destroy(e));
    child.stdin?.on('error', () => undefined); // EPIPE when the program died: its exit says why
    child.stderr!.on('data', (c: Buffer) => {
      // The last 8 KiB: a program's summary or error comes at the end.
      this.#stderr = (this.#stderr + c.toString()).slice(-8192);
    });
    child.stdout!.on('data', (c: Buffer) => {
      if (!this.push(c)) child.stdout!.pause();
    });
    child.stdout!.once('end', () => {
      void this.#exited.then(({ code, signal }) => {
        if (code === 0) this.push(null);
        else this.destroy(new Error(`${path} failed (${signal ?? `exit ${code}`}): ${this.#stderr.trim().slice(-500)}`));
      });
    });
  }

  /** What the program wrote to stderr so far (the last 8 KiB). */
  get stderrText(): string {
    return this.#stderr;
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

/** Counts bytes and computes a SHA-256 of what passes through; read `bytes`/`digest()` after end. */
/** Buffer between stages, so a slow stage does not hold the others in lock-step. */
export const STAGE_BUFFER = 4 * 1024 * 1024;

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
