// zstd streams made of many frames (RFC 8878 section 3.1: a zstd stream is one or more
// concatenated frames, zstd or skippable).
//
// Why this exists: the backup path compresses with `pzstd`, which writes independent frames of
// a few MiB, each preceded by a skippable frame. Independent frames let the sink check the
// start and the end of a dump (binlog coordinates, the "Dump completed" trailer) by
// decompressing only the first and the last frames instead of the whole stream, which on the
// 2-core bench machine was the difference between 0.8x and 1.0x of `mariadb-dump | zstd -1`.
// The walker finds frame boundaries from the frame and block headers alone, so it needs no
// hint from the compressor and also walks single-frame streams (zstd CLI, node:zlib).
//
// Node's own zstd decompressor stops after the first frame and rejects skippable frames
// (nodejs/node#64741, unfixed in Node 24), so decompression goes frame by frame here.
import type { FileHandle } from 'node:fs/promises';
import { Duplex, Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

export interface FrameSegment {
  /** Bytes of one frame (a part of it, or all). */
  data: Buffer;
  kind: 'zstd' | 'skippable';
  /** True when `data` ends its frame. */
  end: boolean;
}

type State = 'magic' | 'skipSize' | 'skipData' | 'fhd' | 'header' | 'block' | 'blockData' | 'checksum';

/**
 * Splits a byte stream into frames by reading only headers. Throws on bytes that are not a
 * frame (wrong magic, reserved bits or block type).
 */
export class ZstdFrameWalker {
  /** Offset of the next byte in the whole stream. */
  offset = 0;
  /** Complete zstd frames seen. */
  frames = 0;
  #state: State = 'magic';
  /** Bytes still to go in the current fixed-size field or payload. */
  #need = 4;
  readonly #field = Buffer.alloc(16);
  #fieldLen = 0;
  #checksum = false;
  #lastBlock = false;
  #kind: 'zstd' | 'skippable' = 'zstd';
  /** Position in the current chunk, for the spans reported to onFrame. */
  #pos = 0;
  #frameStart = 0;

  /** `onFrame(start, end)`: a complete zstd frame at these stream offsets (end exclusive). */
  constructor(readonly onFrame?: (start: number, end: number) => void) {}

  /** True between frames (a clean place for the stream to end). */
  get atBoundary(): boolean {
    return this.#state === 'magic' && this.#fieldLen === 0;
  }

  feed(chunk: Buffer): FrameSegment[] {
    const out: FrameSegment[] = [];
    let pos = 0;
    let segStart = 0;
    const cut = (end: boolean): void => {
      if (pos > segStart || end) out.push({ data: chunk.subarray(segStart, pos), kind: this.#kind, end });
      segStart = pos;
    };
    while (pos < chunk.length) {
      if (this.#state === 'skipData' || this.#state === 'blockData') {
        const take = Math.min(this.#need, chunk.length - pos);
        pos += take;
        this.#need -= take;
        if (this.#need > 0) break;
        this.#pos = pos;
        if (this.#state === 'skipData') this.#skipDone(cut);
        else this.#blockDone(cut);
        continue;
      }
      // A fixed-size field: gather it (it may span chunks).
      const take = Math.min(this.#need - this.#fieldLen, chunk.length - pos);
      chunk.copy(this.#field, this.#fieldLen, pos, pos + take);
      this.#fieldLen += take;
      pos += take;
      // A magic number goes out (below) once it tells which kind of frame follows.
      if (this.#state === 'magic') segStart = pos;
      if (this.#fieldLen < this.#need) break;
      this.#pos = pos;
      this.#fieldDone(cut, pos, out);
    }
    cut(false);
    this.offset += chunk.length;
    return out;
  }

  /** Throws unless the stream ended between frames and held at least one. */
  finish(): void {
    if (!this.atBoundary) throw new Error(`the zstd stream is truncated: it ends inside a frame (at byte ${this.offset})`);
    if (this.frames === 0) throw new Error('the zstd stream holds no frame');
  }

  #expect(state: State, need: number): void {
    this.#state = state;
    this.#need = need;
    this.#fieldLen = 0;
  }

  #frameDone(cut: (end: boolean) => void): void {
    this.frames++;
    this.onFrame?.(this.#frameStart, this.offset + this.#pos);
    cut(true);
    this.#expect('magic', 4);
  }

  #skipDone(cut: (end: boolean) => void): void {
    cut(true);
    this.#expect('magic', 4);
  }

  /** After a block: the next block, the frame's checksum, or the frame's end. */
  #blockDone(cut: (end: boolean) => void): void {
    if (!this.#lastBlock) this.#expect('block', 3);
    else if (this.#checksum) this.#expect('checksum', 4);
    else this.#frameDone(cut);
  }

  /** A fixed-size field is complete: decide what follows. */
  #fieldDone(cut: (end: boolean) => void, pos: number, out: FrameSegment[]): void {
    const f = this.#field;
    switch (this.#state) {
      case 'magic': {
        const magic = f.readUInt32LE(0);
        if (magic === ZSTD_MAGIC) {
          this.#kind = 'zstd';
          this.#frameStart = this.offset + pos - 4;
          this.#expect('fhd', 1);
        } else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
          this.#kind = 'skippable';
          this.#expect('skipSize', 4);
        } else throw new Error(`not a zstd stream: unknown frame magic at byte ${this.offset + pos - 4}`);
        out.push({ data: Buffer.from(f.subarray(0, 4)), kind: this.#kind, end: false });
        return;
      }
      case 'skipSize': {
        const size = f.readUInt32LE(0);
        if (size === 0) this.#skipDone(cut);
        else {
          this.#state = 'skipData';
          this.#need = size;
        }
        return;
      }
      case 'fhd': {
        const fhd = f[0] as number;
        if (fhd & 0x08) throw new Error(`corrupt zstd frame header at byte ${this.offset + pos - 1}`);
        const fcsFlag = fhd >> 6;
        const single = (fhd >> 5) & 1;
        this.#checksum = ((fhd >> 2) & 1) === 1;
        const did = [0, 1, 2, 4][fhd & 3] as number;
        const fcs = fcsFlag === 0 ? single : ([0, 2, 4, 8][fcsFlag] as number);
        const rest = (single ? 0 : 1) + did + fcs;
        if (rest === 0) this.#expect('block', 3);
        else this.#expect('header', rest);
        return;
      }
      case 'header':
        this.#expect('block', 3);
        return;
      case 'block': {
        const h = (f[0] as number) | ((f[1] as number) << 8) | ((f[2] as number) << 16);
        this.#lastBlock = (h & 1) === 1;
        const type = (h >> 1) & 3;
        const size = h >>> 3;
        if (type === 3) throw new Error(`corrupt zstd block header at byte ${this.offset + pos - 3}`);
        const payload = type === 1 ? 1 : size;
        if (payload > 0) {
          this.#state = 'blockData';
          this.#need = payload;
          this.#fieldLen = 0;
        } else this.#blockDone(cut);
        return;
      }
      case 'checksum':
        this.#frameDone(cut);
        return;
      default:
        return;
    }
  }
}

const z = zlib as typeof zlib & { createZstdDecompress?: (o?: { chunkSize?: number }) => Transform };

/**
 * Waits for one of `events` on `s`; rejects on 'error'. Plain listeners, removed when one
 * fires: events.once with an AbortController made (and aborted) an AbortError per wait, which
 * was 0.15 s of a 1 GB restore.
 */
function either(s: Transform, events: string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      for (const e of events) s.off(e, ok);
      s.off('error', fail);
      if (err) reject(err);
      else resolve();
    };
    const ok = (): void => done();
    const fail = (e: Error): void => done(e);
    for (const e of events) s.on(e, ok);
    s.on('error', fail);
  });
}

/** Writes `data` to `dec`, yielding its output until it takes more input. */
async function* feedFrame(dec: Transform, data: Buffer): AsyncGenerator<Buffer> {
  dec.write(data);
  for (;;) {
    let c: Buffer | null;
    while ((c = dec.read() as Buffer | null) !== null) yield c;
    if (dec.errored) throw dec.errored;
    if (!dec.writableNeedDrain) return;
    await either(dec, ['readable', 'drain']);
  }
}

/** Ends `dec` and yields the rest of its output. */
async function* endFrame(dec: Transform): AsyncGenerator<Buffer> {
  dec.end();
  for (;;) {
    let c: Buffer | null;
    while ((c = dec.read() as Buffer | null) !== null) yield c;
    if (dec.errored) throw dec.errored;
    if (dec.readableEnded) return;
    await either(dec, ['readable', 'end']);
  }
}

/** A frame up to this many stored bytes is held whole and decoded ahead of the reader. */
const HOLD_LIMIT = 8 * 1024 * 1024;
/** Decoded bytes a frame decoding ahead may queue before its decoder pauses (a frame of zeros decodes to far more than it stores). */
const AHEAD_BYTES = 4 * 1024 * 1024;
/** Held frames decoding at once. */
const DECODE_AHEAD = 3;

/**
 * A held frame decoding on the thread pool ahead of its turn: its output queues up to
 * AHEAD_BYTES, then its decoder pauses until the reader takes what it queued. No frame is
 * decoded twice and memory is bounded whatever a frame decodes to.
 */
class AheadFrame {
  readonly #dec: Transform;
  readonly #chunks: Buffer[] = [];
  #bytes = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(dec: Transform, frame: Buffer) {
    this.#dec = dec;
    const wake = (): void => {
      const w = this.#wake;
      this.#wake = undefined;
      w?.();
    };
    dec.on('data', (c: Buffer) => {
      this.#chunks.push(c);
      this.#bytes += c.length;
      if (this.#bytes >= AHEAD_BYTES) dec.pause();
      wake();
    });
    dec.once('end', () => {
      this.#ended = true;
      wake();
    });
    dec.once('error', (e: Error) => {
      this.#error = e;
      wake();
    });
    dec.end(frame);
  }

  /** The frame's output, in order, as the reader takes it. */
  async *output(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        while (this.#chunks.length) {
          const c = this.#chunks.shift()!;
          this.#bytes -= c.length;
          yield c;
        }
        if (this.#error) throw this.#error;
        if (this.#ended) return;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          this.#dec.resume();
        });
      }
    } finally {
      this.#dec.destroy();
    }
  }

  destroy(): void {
    this.#dec.destroy();
  }
}

/**
 * Decompresses a zstd stream of one or more frames (skippable frames are skipped), with
 * backpressure: output is produced as the reader asks for it. Frames of up to HOLD_LIMIT
 * stored bytes (the 4 MiB frames of a framed artifact, pzstd's) are held whole and decoded on
 * the thread pool, DECODE_AHEAD at a time, while the reader works on the ones before (a 1 GB
 * directory restore waited 1.5 s for frames decoded one at a time as it asked). A bigger frame
 * (a one-frame artifact) is decoded as a stream, its output as it comes.
 */
export function zstdFramesDecompress(chunkSize: number): Duplex {
  if (!z.createZstdDecompress) throw new Error('zstd needs Node.js 22.15 or newer');
  const create = z.createZstdDecompress;
  const streamed = (): Transform => {
    const dec = create({ chunkSize });
    dec.on('error', () => undefined); // surfaced by `errored` (feedFrame, endFrame) or AheadFrame, also while no one waits
    return dec;
  };
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const walker = new ZstdFrameWalker();
    let dec: Transform | undefined;
    let held: Buffer[] = [];
    let heldLen = 0;
    const ahead: AheadFrame[] = [];
    try {
      for await (const chunk of source) {
        for (const seg of walker.feed(chunk)) {
          if (seg.kind !== 'zstd') continue;
          if (!dec) {
            held.push(seg.data);
            heldLen += seg.data.length;
            if (seg.end) {
              ahead.push(new AheadFrame(streamed(), held.length === 1 ? held[0]! : Buffer.concat(held, heldLen)));
              held = [];
              heldLen = 0;
              while (ahead.length >= DECODE_AHEAD) yield* ahead.shift()!.output();
              continue;
            }
            if (heldLen <= HOLD_LIMIT) continue;
            // Too big to hold: everything before it first, then it as a stream.
            while (ahead.length) yield* ahead.shift()!.output();
            dec = streamed();
            for (const h of held) yield* feedFrame(dec, h);
            held = [];
            heldLen = 0;
            continue;
          }
          if (seg.data.length > 0) yield* feedFrame(dec, seg.data);
          if (seg.end) {
            yield* endFrame(dec);
            dec.destroy();
            dec = undefined;
          }
        }
      }
      while (ahead.length) yield* ahead.shift()!.output();
      walker.finish();
    } finally {
      dec?.destroy();
      for (const a of ahead) a.destroy();
    }
  });
}

const unzstd = promisify(zlib.zstdDecompress);

/** What the sink learns from a framed stream without decompressing all of it. */
export interface FrameEdges {
  /** The decompressed first frame. */
  head: Buffer;
  /** The decompressed end of the stream (the last frame, and the one before it). */
  tail: Buffer;
  frames: number;
}

/** A frame larger than this is not what a framing compressor writes: refuse to hold it. */
const MAX_HELD_FRAME = 64 * 1024 * 1024;

/**
 * Passes a compressed stream through unchanged while checking its framing; keeps the first
 * frame and the last two, to decompress them at the end (`edges()`).
 */
export class FrameEdgeKeeper extends Transform {
  readonly walker = new ZstdFrameWalker();
  #first: Buffer[] | null = null;
  #firstDone = false;
  #cur: Buffer[] = [];
  #curLen = 0;
  #prev: Buffer[] | null = null;
  #last: Buffer[] | null = null;

  constructor(highWaterMark: number) {
    super({ highWaterMark });
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    let segs: FrameSegment[];
    try {
      segs = this.walker.feed(chunk);
    } catch (e) {
      return cb(e as Error);
    }
    for (const s of segs) {
      if (s.kind !== 'zstd') continue;
      this.#cur.push(s.data);
      this.#curLen += s.data.length;
      if (this.#curLen > MAX_HELD_FRAME) return cb(new Error(`the compressor wrote a frame larger than ${MAX_HELD_FRAME} bytes`));
      if (s.end) {
        if (!this.#firstDone) {
          this.#first = this.#cur;
          this.#firstDone = true;
        }
        this.#prev = this.#last;
        this.#last = this.#cur;
        this.#cur = [];
        this.#curLen = 0;
      }
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.walker.finish();
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  /** Decompresses the kept frames; call after the stream ended cleanly. */
  async edges(): Promise<FrameEdges> {
    const [first, prev, last] = [this.#first, this.#prev, this.#last];
    if (!first || !last) throw new Error('the zstd stream holds no frame');
    return decompressEdges(first, prev, last, this.walker.frames, async (f) => Buffer.concat(f));
  }
}

/** Decompresses the first frame and the last two (each read once, whichever are the same). */
async function decompressEdges<F>(first: F, prev: F | null | undefined, last: F, frames: number, bytes: (f: F) => Promise<Buffer>): Promise<FrameEdges> {
  const head = await unzstd(await bytes(first));
  const lastRaw = last === first ? head : await unzstd(await bytes(last));
  const prevRaw = !prev ? undefined : prev === first ? head : await unzstd(await bytes(prev));
  return { head, tail: prevRaw ? Buffer.concat([prevRaw, lastRaw]) : lastRaw, frames };
}

type Span = { start: number; end: number };

/**
 * The same check for a stream that is a file: walks the frames of the chunks it is fed,
 * remembering only where the first and the last two zstd frames lie; edges() reads those back.
 * Nothing is held meanwhile, so the caller may reuse its read buffer.
 */
export class FrameSpans {
  readonly walker = new ZstdFrameWalker((start, end) => {
    if (end - start > MAX_HELD_FRAME) throw new Error(`the compressor wrote a frame larger than ${MAX_HELD_FRAME} bytes`);
    const span = { start, end };
    this.#first ??= span;
    this.#prev = this.#last;
    this.#last = span;
  });
  #first?: Span;
  #prev?: Span;
  #last?: Span;

  feed(chunk: Buffer): void {
    this.walker.feed(chunk);
  }

  /** Call after the file is complete: checks it ended between frames, then reads the edges. */
  async edges(file: FileHandle): Promise<FrameEdges> {
    this.walker.finish();
    const [first, prev, last] = [this.#first!, this.#prev, this.#last!];
    return decompressEdges(first, prev, last, this.walker.frames, async ({ start, end }) => {
      const buf = Buffer.allocUnsafe(end - start);
      const { bytesRead } = await file.read(buf, 0, buf.length, start);
      if (bytesRead !== buf.length) throw new Error(`the file ended inside a frame (at byte ${start + bytesRead})`);
      return buf;
    });
  }
}

/** One frame's bytes, copied into a buffer that grows and is reused. */
class HeldFrame {
  buf = Buffer.allocUnsafe(1024 * 1024);
  len = 0;
  append(data: Buffer): void {
    if (this.len + data.length > MAX_HELD_FRAME) throw new Error(`the compressor wrote a frame larger than ${MAX_HELD_FRAME} bytes`);
    if (this.len + data.length > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(MAX_HELD_FRAME, Math.max(this.buf.length * 2, this.len + data.length)));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    data.copy(this.buf, this.len);
    this.len += data.length;
  }
}

/**
 * The same check for a stream read into a buffer its reader reuses (the sync tail of run.ts):
 * walks the frames of each chunk and copies the first frame and the last two into buffers of
 * its own (four at most, reused as frames go by), so no chunk is held.
 */
export class FrameEdgeCopier {
  readonly walker = new ZstdFrameWalker();
  #first: HeldFrame | undefined;
  #prev: HeldFrame | undefined;
  #last: HeldFrame | undefined;
  #cur = new HeldFrame();

  feed(chunk: Buffer): void {
    for (const s of this.walker.feed(chunk)) {
      if (s.kind !== 'zstd') continue;
      this.#cur.append(s.data);
      if (!s.end) continue;
      const done = this.#cur;
      const spare = this.#prev && this.#prev !== this.#first ? this.#prev : undefined;
      this.#first ??= done;
      this.#prev = this.#last;
      this.#last = done;
      this.#cur = spare ?? new HeldFrame();
      this.#cur.len = 0;
    }
  }

  /** Checks the stream ended between frames, then decompresses the kept ones. */
  async edges(): Promise<FrameEdges> {
    this.walker.finish();
    const [first, prev, last] = [this.#first, this.#prev, this.#last];
    if (!first || !last) throw new Error('the zstd stream holds no frame');
    return decompressEdges(first, prev, last, this.walker.frames, async (f) => f.buf.subarray(0, f.len));
  }
}
