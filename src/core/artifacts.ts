// The backup data path between engines and pools: PoolSink runs each artifact's stage list
// (pipeline/plan.ts, pipeline/run.ts) into its pool key. And the way back: pool -> verify
// sha256 -> decompress, and the proof that artifacts are whole before a restore.
import { pipeline } from 'node:stream';
import { PassThrough, Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { createHash } from 'node:crypto';
import { DbsError } from '../errors.js';
import type { ArtifactReader, ArtifactSink, ArtifactWriteOptions, Inspector, StoredArtifact, ToolStart } from '../engines/types.js';
import { stagesFor, type Execution } from '../pipeline/plan.js';
import { runArtifact, type ArtifactSource } from '../pipeline/run.js';
import { compressionSuffix, decompressStage, decryptStage, ProgressCounter, STAGE_BUFFER, type AgeIdentities, type Compression } from '../pipeline/stages.js';
import { artifactKey } from '../storage/layout.js';
import type { PoolDriver } from '../storage/types.js';

export interface SinkOptions {
  driver: PoolDriver;
  planId: string;
  backupId: string;
  compression: Compression;
  compressionLevel?: number;
  /** age recipients: every artifact is encrypted to them after compression (key suffix .age). */
  recipients?: string[];
  /** Forces an execution of the data path (setting `execution`); default: the planner's choice. */
  execution?: Execution;
  signal: AbortSignal;
  /** Raw bytes so far across all artifacts of this backup. */
  onProgress?: (rawBytes: number) => void;
  /** Stored bytes as they go to the pool (each chunk's length). */
  onStoredBytes?: (n: number) => void;
  /** Bytes out of each transform stage (compress, encrypt), chunk by chunk (the samples' throughput). */
  onStageBytes?: (stage: string, n: number) => void;
}

/**
 * The sink engines write into: for each artifact the stage list (pipeline/plan.ts) is run by
 * the pipeline (pipeline/run.ts) into the pool object at the artifact's key.
 */
export class PoolSink implements ArtifactSink {
  readonly stored: StoredArtifact[] = [];
  /** Keys written or being written, for cleanup on failure. */
  readonly keys = new Set<string>();
  #rawDone = 0;

  constructor(readonly o: SinkOptions) {}

  get encrypted(): boolean {
    return (this.o.recipients ?? []).length > 0;
  }

  write(name: string, stream: Readable, options: ArtifactWriteOptions & { inspector?: Inspector }): Promise<StoredArtifact> {
    return this.#store(name, options, { kind: 'stream', stream, ...(options.inspector ? { inspector: options.inspector } : {}) });
  }

  writeTool(name: string, options: ArtifactWriteOptions, spawn: (stdout: 'pipe' | Writable) => ToolStart): Promise<StoredArtifact> {
    return this.#store(name, options, { kind: 'tool', spawn });
  }

  /** The executions and stages the artifacts went through, for the manifest. */
  summary(): { execution: string; stages: string[] } {
    const executions = [...new Set(this.stored.map((a) => a.execution ?? '?'))];
    return { execution: executions.join('+'), stages: this.stored[0]?.stages ?? [] };
  }

  async #store(name: string, options: ArtifactWriteOptions, source: ArtifactSource): Promise<StoredArtifact> {
    const recipients = this.o.recipients ?? [];
    const fileName = `${name}${options.extension}${compressionSuffix(this.o.compression)}${recipients.length ? '.age' : ''}`;
    const key = artifactKey(this.o.planId, this.o.backupId, fileName);
    if (this.keys.has(key)) throw new DbsError('INTERNAL', `artifact ${fileName} written twice`);
    this.keys.add(key);
    const { driver, signal } = this.o;
    const base = this.#rawDone;
    const put = { signal, sizeHint: options.sizeHint };
    const r = await runArtifact({
      stages: stagesFor({ compression: this.o.compression, compressionLevel: this.o.compressionLevel, recipients, parallel: Boolean(options.parallelCompression), frameTable: Boolean(options.frameTable) }),
      source,
      guard: options.guard ?? 'none',
      target: {
        put: (body) => driver.put(key, body, put),
        ...(driver.openFile ? { openFile: () => driver.openFile!(key, put) } : {}),
      },
      localFiles: driver.capabilities.localFiles,
      ...(this.o.execution ? { force: this.o.execution } : {}),
      ...(options.small ? { small: true } : {}),
      signal,
      onRawBytes: (n) => this.o.onProgress?.(base + n),
      ...(this.o.onStoredBytes ? { onStoredBytes: this.o.onStoredBytes } : {}),
      ...(this.o.onStageBytes ? { onStageBytes: this.o.onStageBytes } : {}),
    });
    const storedBytes = r.facts.storedBytes;
    const sha256 = r.facts.sha256;
    if (typeof storedBytes !== 'number' || typeof sha256 !== 'string') throw new DbsError('INTERNAL', `${fileName}: the hash stage recorded nothing`);
    const frames = Array.isArray(r.facts.frames) ? (r.facts.frames as [number, number][]) : undefined;
    const art: StoredArtifact = {
      name: fileName,
      key,
      rawBytes: r.rawBytes,
      storedBytes,
      sha256,
      compression: this.o.compression,
      encryption: recipients.length ? { format: 'age', recipients: [...recipients] } : 'none',
      execution: r.execution,
      stages: r.stages,
      ...(frames ? { frames } : {}),
    };
    this.#rawDone += art.rawBytes;
    this.stored.push(art);
    return art;
  }
}

/** Passes bytes through, telling each chunk's length. */
class ByteTap extends Transform {
  constructor(readonly onBytes: (n: number) => void) {
    super({ highWaterMark: STAGE_BUFFER });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.onBytes(chunk.length);
    cb(null, chunk);
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

/**
 * Readers for a manifest's artifacts: each open() streams pool -> sha256 check -> decrypt (age,
 * with `identities`) -> decompress. `onBytes`: raw bytes so far; `onStoredBytes`: each chunk's
 * length as it comes from the pool (ranged reads too).
 */
export function artifactReaders(driver: PoolDriver, artifacts: StoredArtifact[], signal: AbortSignal, onBytes?: (n: number) => void, identities?: AgeIdentities, onStoredBytes?: (n: number) => void): ArtifactReader[] {
  const tap = (): Transform[] => (onStoredBytes ? [new ByteTap(onStoredBytes)] : []);
  let total = 0;
  return artifacts.map((a) => ({
    name: a.name,
    rawBytes: a.rawBytes,
    async open() {
      const enc = a.encryption && a.encryption !== 'none' ? a.encryption : undefined;
      if (enc && !identities) {
        throw new DbsError('IDENTITY_REQUIRED', `artifact ${a.name} is encrypted (age) to ${enc.recipients.join(', ')}; reading it needs the identity of one of them`, {
          hint: 'pass --identity-file FILE or set DBS_IDENTITY_FILE=FILE',
        });
      }
      const src = await driver.get(a.key, { signal });
      const verify = new VerifyStage({ sha256: a.sha256, storedBytes: a.storedBytes, name: a.name });
      const decrypt = enc && identities ? [decryptStage(identities, `artifact ${a.name}`)] : [];
      const dec = decompressStage(a.compression as Compression);
      const count = new ProgressCounter((n) => onBytes?.(total + n));
      count.on('end', () => (total += count.bytes));
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      pipeline([src, ...tap(), verify, ...decrypt, ...(dec ? [dec] : []), count, out], (err: Error | null) => {
        if (err) out.destroy(err);
      });
      return out;
    },
    ...(driver.capabilities.rangedReads && a.compression === 'zstd' && (a.encryption === undefined || a.encryption === 'none')
      ? {
          async openRange(storedStart: number, storedEnd: number) {
            if (!(storedStart >= 0 && storedEnd > storedStart && storedEnd <= a.storedBytes)) throw new DbsError('INTERNAL', `${a.name}: range ${storedStart}-${storedEnd} outside its ${a.storedBytes} bytes`);
            const src = await driver.get(a.key, { signal, range: { start: storedStart, end: storedEnd - 1 } });
            const out = new PassThrough({ highWaterMark: 1 << 20 });
            pipeline([src, ...tap(), decompressStage('zstd')!, out], (err: Error | null) => {
              if (err) out.destroy(err);
            });
            return out;
          },
        }
      : {}),
  }));
}

/**
 * Proves artifacts whole before a restore sends any byte into a live target: first every
 * artifact's size (a stat, no data read), then a full read of each against its sha256. The
 * restore then streams them again (still checked). On a local pool the second read comes from
 * the page cache; see docs for the cost measured on S3.
 */
export async function proveArtifactsWhole(driver: PoolDriver, artifacts: StoredArtifact[], signal: AbortSignal, onStoredBytes?: (n: number) => void): Promise<void> {
  for (const a of artifacts) {
    const info = await driver.stat(a.key, { signal });
    if (!info) {
      throw new DbsError('VERIFY_FAILED', `artifact ${a.name} is missing from the pool`, { hint: 'the backup cannot be restored; restore another backup' });
    }
    if (info.size !== a.storedBytes) {
      throw new DbsError('VERIFY_FAILED', `artifact ${a.name} is damaged: it is ${info.size} bytes, the manifest says ${a.storedBytes}; nothing was restored`, {
        hint: 'restore another backup; run dbs backup verify on the others',
      });
    }
  }
  for (const a of artifacts) {
    const verify = new VerifyStage({ sha256: a.sha256, storedBytes: a.storedBytes, name: a.name });
    const drain = new Writable({ highWaterMark: STAGE_BUFFER, write: (_c, _e, cb) => cb() });
    await new Promise<void>((resolve, reject) => {
      void driver.get(a.key, { signal }).then(
        (src) => pipeline([src, ...(onStoredBytes ? [new ByteTap(onStoredBytes)] : []), verify, drain], (err) => (err ? reject(err) : resolve())),
        reject,
      );
    });
  }
}
