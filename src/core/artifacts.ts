// The backup data path between engines and pools: compress -> sha256 + byte counts -> pool,
// with end-to-end backpressure. And the way back: pool -> verify sha256 -> decompress.
import { pipeline } from 'node:stream';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { createHash } from 'node:crypto';
import { DbsError } from '../errors.js';
import type { ArtifactReader, ArtifactSink, ArtifactWriteOptions, StoredArtifact } from '../engines/types.js';
import { compressStage, compressionSuffix, decompressStage, HashCounter, ProgressCounter, type Compression } from '../pipeline/stages.js';
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
    const comp = compressStage(this.o.compression, this.o.compressionLevel);
    const stages = [stream, raw, ...(comp ? [comp] : []), stored] as const;
    // pipeline() destroys every stage when one fails, so an engine stream that errors (tool
    // failed) makes put() see an error rather than a clean end.
    const body = (pipeline as unknown as (...s: unknown[]) => Readable)(...stages, () => undefined);
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
