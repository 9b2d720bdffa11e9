// Stream stages of the backup path: compress, decompress, hash + count, progress. Every stage
// is a Transform with normal backpressure; nothing is buffered whole.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { DbsError } from '../errors.js';

export type Compression = 'zstd' | 'gzip' | 'none';
export const COMPRESSIONS: readonly Compression[] = ['zstd', 'gzip', 'none'];

export function compressionSuffix(c: Compression): string {
  return c === 'zstd' ? '.zst' : c === 'gzip' ? '.gz' : '';
}

// node:zlib has zstd from Node 22.15 / 23.8 on; typed loosely so older typings still build.
const z = zlib as typeof zlib & {
  createZstdCompress?: (o?: { params?: Record<number, number> }) => Transform;
  createZstdDecompress?: () => Transform;
  constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number };
};

function needZstd(): never {
  throw new DbsError('TOOL_MISSING', `zstd compression needs Node.js 22.15 or newer (this is ${process.version})`, {
    hint: 'run dbs with a newer Node.js, or choose --compress gzip',
  });
}

/** Default levels: zstd 3 is zstd's own default; gzip 6 is gzip's. Fast paths pass 1. */
export function compressStage(c: Compression, level?: number): Transform | undefined {
  switch (c) {
    case 'none':
      return undefined;
    case 'gzip':
      return zlib.createGzip({ level: Math.min(level ?? 6, 9), chunkSize: 64 * 1024 });
    case 'zstd': {
      if (!z.createZstdCompress) needZstd();
      const key = z.constants.ZSTD_c_compressionLevel ?? 100;
      return z.createZstdCompress({ params: { [key]: level ?? 3 } });
    }
  }
}

export function decompressStage(c: Compression): Transform | undefined {
  switch (c) {
    case 'none':
      return undefined;
    case 'gzip':
      return zlib.createGunzip();
    case 'zstd':
      if (!z.createZstdDecompress) needZstd();
      return z.createZstdDecompress();
  }
}

/** Counts bytes and computes a SHA-256 of what passes through; read `bytes`/`digest()` after end. */
export class HashCounter extends Transform {
  bytes = 0;
  readonly #hash: Hash = createHash('sha256');
  #digest?: string;

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
    super();
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
