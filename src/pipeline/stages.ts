// Compression names and the read side of the data path (restore, verify): decrypt, decompress
// and count.
// The write side is the stage list of plan.ts (stages/*.ts) run by run.ts.
import { Transform, type TransformCallback } from 'node:stream';
import { decompressor } from './stages/compress.js';
import { AgeDecrypt, type AgeIdentities } from './stages/encrypt.js';
import { STAGE_BUFFER } from './stage.js';

export { STAGE_BUFFER };

import type { Compression } from './names.js';
export { COMPRESSIONS, type Compression } from './names.js';

export function compressionSuffix(c: Compression): string {
  return c === 'zstd' ? '.zst' : c === 'gzip' ? '.gz' : '';
}

export type { AgeIdentities };

/** Undoes the encryption stage (age) with the reader's identities; `what` names the artifact in errors. */
export function decryptStage(identities: AgeIdentities, what: string): AgeDecrypt {
  return new AgeDecrypt(identities, what);
}

/** Undoes a compression (undefined for none); zstd frame by frame, as pzstd writes many. */
export { decompressor as decompressStage };

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
