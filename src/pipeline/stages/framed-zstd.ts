// Stage: zstd in independent frames cut at raw offsets this stage chooses and records (the
// frame table), so a reader can fetch and decompress only the frames that hold a part of the
// raw stream (a file out of a tar). Each segment of SEGMENT raw bytes becomes one zstd frame
// compressed by node:zlib's async zstdCompress on the libuv thread pool, IN_FLIGHT at a time
// (every core), emitted in order. Any zstd decoder reads the result (frames concatenate).
// No program does this, so the stage runs in the node execution only.
import { Transform, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { DbsError } from '../../errors.js';
import type { TransformStage } from '../stage.js';
import { decompressor } from './compress.js';

/** Raw bytes per frame. */
export const SEGMENT = 4 * 1024 * 1024;
/** Frames being compressed at once. */
const IN_FLIGHT = 3;

/** Frame starts as [rawOffset, storedOffset] pairs; the last pair is the end (raw and stored sizes). */
export type FrameTable = [number, number][];

type ZstdOne = (buf: Buffer, o: { params: Record<number, number>; chunkSize?: number }, cb: (err: Error | null, out: Buffer) => void) => void;
const z = zlib as typeof zlib & { zstdCompress?: ZstdOne; constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number; ZSTD_c_checksumFlag?: number } };

export class FramedZstd extends Transform {
  readonly table: FrameTable = [];
  #parts: Buffer[] = [];
  #partLen = 0;
  #raw = 0;
  #stored = 0;
  #pending: Promise<Buffer>[] = [];

  constructor(readonly level: number) {
    super({ highWaterMark: SEGMENT });
    if (!z.zstdCompress) throw new DbsError('TOOL_MISSING', `framed zstd needs Node.js 22.15 or newer (this is ${process.version})`, { hint: 'run dbs with a newer Node.js' });
  }

  #compress(buf: Buffer): Promise<Buffer> {
    const params = { [z.constants.ZSTD_c_compressionLevel ?? 100]: this.level, [z.constants.ZSTD_c_checksumFlag ?? 201]: 1 };
    // One output chunk per frame: zlib's default (16 KiB) makes a thread-pool round trip per 16 KiB.
    return new Promise((resolve, reject) => z.zstdCompress!(buf, { params, chunkSize: SEGMENT + 65536 }, (err, out) => (err ? reject(err) : resolve(out))));
  }

  /** Sends the current segment off; resolves when at most IN_FLIGHT - 1 remain in flight. */
  async #cut(): Promise<void> {
    if (this.#partLen === 0) return;
    const seg = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#partLen);
    this.#parts = [];
    this.#partLen = 0;
    const p = this.#compress(seg);
    p.catch(() => undefined);
    this.#pending.push(p);
    const rawStart = this.#raw;
    this.#raw += seg.length;
    this.table.push([rawStart, -1]);
    while (this.#pending.length >= IN_FLIGHT) await this.#emitOldest();
  }

  async #emitOldest(): Promise<void> {
    const out = await this.#pending[0]!;
    this.#pending.shift();
    const row = this.table.find((r) => r[1] === -1)!;
    row[1] = this.#stored;
    this.#stored += out.length;
    this.push(out);
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    void (async () => {
      let c = chunk;
      while (c.length > 0) {
        const take = Math.min(SEGMENT - this.#partLen, c.length);
        this.#parts.push(take === c.length ? c : c.subarray(0, take));
        this.#partLen += take;
        c = c.subarray(take);
        if (this.#partLen === SEGMENT) await this.#cut();
      }
    })().then(() => cb(), (e: Error) => cb(e));
  }

  override _flush(cb: TransformCallback): void {
    void (async () => {
      await this.#cut();
      while (this.#pending.length) await this.#emitOldest();
      this.table.push([this.#raw, this.#stored]);
    })().then(() => cb(), (e: Error) => cb(e));
  }
}

/** The stage: one FramedZstd per artifact; its frame table lands in the artifact record (`frames`). */
export function framedZstdStage(level: number): TransformStage {
  let made: FramedZstd | undefined;
  return {
    kind: 'transform',
    name: `compress:zstd-${level}-framed`,
    node: () => (made = new FramedZstd(level)),
    program: () => undefined,
    inverse: () => decompressor('zstd')!,
    facts: () => (made ? { frames: made.table } : {}),
  };
}
