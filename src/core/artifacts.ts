// The backup data path between engines and pools: compress -> sha256 + byte counts -> pool,
// with end-to-end backpressure. And the way back: pool -> verify sha256 -> decompress.
import { pipeline } from 'node:stream';
import { PassThrough, Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { createHash } from 'node:crypto';
import { DbsError } from '../errors.js';
import type { ArtifactReader, ArtifactSink, ArtifactWriteOptions, StoredArtifact } from '../engines/types.js';
import { compressStage, compressionSuffix, decompressStage, HashCounter, ProcessStage, ProgressCounter, STAGE_BUFFER, zstdBinary, type Compression } from '../pipeline/stages.js';
import { artifactKey } from '../storage/layout.js';
import type { PoolDriver } from '../storage/types.js';

export interface SinkOptions {
  driver: PoolDriver;
  planId: string;
  backupId: string;
  compression: Compression;
  compressionLevel?: number;
  signal: AbortSignal;
  /** Raw bytes so far across all artifacts of this backup. */
  onProgress?: (rawBytes: number) => void;
}

export class PoolSink implements ArtifactSink {
  readonly stored: StoredArtifact[] = [];
  /** Keys written or being written, for cleanup on failure. */
  readonly keys = new Set<string>();
  #rawDone = 0;

  constructor(readonly o: SinkOptions) {}

  async write(name: string, stream: Readable, options: ArtifactWriteOptions): Promise<StoredArtifact> {
    const fileName = `${name}${options.extension}${compressionSuffix(this.o.compression)}`;
    const key = artifactKey(this.o.planId, this.o.backupId, fileName);
    if (this.keys.has(key)) throw new DbsError('INTERNAL', `artifact ${fileName} written twice`);
    this.keys.add(key);
    const base = this.#rawDone;
    const raw = new ProgressCounter((n) => this.o.onProgress?.(base + n));
    const stored = new HashCounter();
    const pipe = pipeline as unknown as (...s: unknown[]) => Readable;
    let body: Readable;
    const zstd = this.o.compression === 'zstd' ? zstdBinary() : undefined;
    const fd = (stream as { _handle?: { fd?: number } })._handle?.fd;
    if (zstd && options.inspector && typeof fd === 'number' && fd >= 0) {
      // Hand-off: zstd reads the tool's stdout pipe itself, so no raw byte crosses Node twice.
      // The inspector sees a decompressed copy of what is stored; the stored stream ends only
      // after the inspector has ended cleanly.
      const z = new ProcessStage(zstd, ['-q', `-${Math.min(Math.max(this.o.compressionLevel ?? 1, 1), 19)}`, '-c', '--no-progress'], { stdin: stream });
      const check = inspectCopy(options.inspector, raw, this.o.compression);
      body = pipe(z, check, stored, () => undefined);
    } else {
      const comp = compressStage(this.o.compression, this.o.compressionLevel);
      body = pipe(stream, ...(options.inspector ? [options.inspector] : []), raw, ...(comp ? [comp] : []), stored, () => undefined);
    }
    // pipeline() destroys every stage when one fails, so an engine stream that errors (tool
    // failed) makes put() see an error rather than a clean end.
    await this.o.driver.put(key, body, { signal: this.o.signal, sizeHint: options.sizeHint });
    const art: StoredArtifact = {
      name: fileName,
      key,
      rawBytes: raw.bytes,
      storedBytes: stored.bytes,
      sha256: stored.digest(),
      compression: this.o.compression,
    };
    this.#rawDone += raw.bytes;
    this.stored.push(art);
    return art;
  }
}

/**
 * Passes compressed bytes through unchanged while feeding a decompressed copy to `inspector`
 * (then `counter`); flushes only once the inspector has ended without error, so the stored
 * artifact never ends cleanly when the engine's check failed.
 */
function inspectCopy(inspector: Transform, counter: Transform, compression: Compression): Transform {
  const dec = decompressStage(compression)!;
  const sinkAll = new Writable({ highWaterMark: STAGE_BUFFER, write: (_c, _e, cb) => cb() });
  let verdict: Error | null | undefined;
  const settled = new Promise<Error | null>((resolve) => {
    pipeline(dec, inspector, counter, sinkAll, (err) => {
      verdict = err ?? null;
      resolve(verdict);
    });
  });
  return new Transform({
    highWaterMark: STAGE_BUFFER,
    transform(chunk: Buffer, _e, cb: TransformCallback) {
      if (verdict) return cb(verdict);
      // Backpressure from the inspecting side too.
      if (dec.write(chunk)) cb(null, chunk);
      else dec.once('drain', () => cb(verdict ?? null, chunk));
    },
    flush(cb: TransformCallback) {
      dec.end();
      void settled.then((err) => cb(err));
    },
    destroy(err, cb) {
      if (verdict === undefined) dec.destroy(err ?? undefined);
      cb(err);
    },
  });
}

/** Passes bytes through and fails at the end when size or sha256 differ from the manifest. */
export class VerifyStage extends Transform {
  readonly #hash = createHash('sha256');
  bytes = 0;

  constructor(
    readonly expected: { sha256: string; storedBytes: number; name: string },
  ) {
    super();
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.#hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const got = this.#hash.digest('hex');
    if (this.bytes !== this.expected.storedBytes || got !== this.expected.sha256) {
      cb(
        new DbsError('VERIFY_FAILED', `artifact ${this.expected.name} is damaged: ${this.bytes} bytes with sha256 ${got.slice(0, 16)}..., the manifest says ${this.expected.storedBytes} bytes with ${this.expected.sha256.slice(0, 16)}...`, {
          hint: 'restore another backup; run dbs backup verify on the others',
        }),
      );
    } else cb();
  }
}

/** Readers for a manifest's artifacts: each open() streams pool -> sha256 check -> decompress. */
export function artifactReaders(driver: PoolDriver, artifacts: StoredArtifact[], signal: AbortSignal, onBytes?: (n: number) => void): ArtifactReader[] {
  let total = 0;
  return artifacts.map((a) => ({
    name: a.name,
    rawBytes: a.rawBytes,
    async open() {
      const src = await driver.get(a.key, { signal });
      const verify = new VerifyStage({ sha256: a.sha256, storedBytes: a.storedBytes, name: a.name });
      const dec = decompressStage(a.compression as Compression);
      const count = new ProgressCounter((n) => onBytes?.(total + n));
      count.on('end', () => (total += count.bytes));
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      (pipeline as unknown as (...s: unknown[]) => Readable)(src, verify, ...(dec ? [dec] : []), count, out, (err: Error | null) => {
        if (err) out.destroy(err);
      });
      return out;
    },
  }));
}
