// The content hashes of a directory backup, computed off the main thread. The walk reads files
// into batch buffers of shared memory (SharedArrayBuffer) and notes, per batch, which byte
// ranges belong to which file; a worker thread hashes those ranges (SHA-256) while the main
// thread reads on and the thread pool compresses the same batch. A batch is filled again only
// after both are done with it: the compressor gives it back (pipeline/lend.ts) and `reusable`
// waits for the worker. (Shared memory is not counted by V8's collector: a new shared buffer
// per batch grew RSS by 120 MB, so batches are reused, never left to the collector.) On the
// 1 GB snapshot the main thread spent 1.3 s of its ~4 s in sha256. A backup whose data fits
// one batch never starts the worker: its ranges are hashed inline. The worker's code is a
// string (a Worker with `eval`), so it runs from the single executable too.
import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { DbsError } from '../../errors.js';

/** Batches posted and not yet hashed before the walk waits for the worker. */
const AHEAD = 4;

/** A new batch buffer the worker can read without a copy. */
export function sharedBatch(size: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(size));
}

/**
 * Hashes the ranges of one batch; returns [id, hex] of the files that ended in it. Runs in the
 * worker (as source text: self-contained, no helpers, no closures) and inline.
 * `ranges`: flat triples [id, start, end]; `closes`: ids whose last byte is in or before this batch.
 */
export function hashRanges(state: Map<number, Hash>, make: (alg: string) => Hash, buf: Uint8Array, ranges: number[], closes: number[]): [number, string][] {
  for (let i = 0; i < ranges.length; i += 3) {
    const id = ranges[i]!;
    let h = state.get(id);
    if (h === undefined) {
      h = make('sha256');
      state.set(id, h);
    }
    h.update(buf.subarray(ranges[i + 1]!, ranges[i + 2]!));
  }
  const out: [number, string][] = [];
  for (let i = 0; i < closes.length; i++) {
    const id = closes[i]!;
    let h = state.get(id);
    if (h === undefined) h = make('sha256'); // an empty file
    state.delete(id);
    out.push([id, h.digest('hex')]);
  }
  return out;
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashRanges = ${hashRanges.toString()};
const state = new Map();
parentPort.on('message', (m) => {
  if (m.end) {
    parentPort.postMessage({ done: true });
    return;
  }
  const results = hashRanges(state, createHash, new Uint8Array(m.sab, 0, m.len), m.ranges, m.closes);
  Atomics.add(m.counter, 0, 1);
  Atomics.notify(m.counter, 0);
  parentPort.postMessage({ results });
});
`;

export class ContentHasher {
  #ranges: number[] = [];
  #closes: number[] = [];
  #nextId = 0;
  readonly #done = new Map<number, (hex: string) => void>();
  readonly #inline = new Map<number, Hash>();
  #worker: Worker | undefined;
  readonly #counter = new Int32Array(new SharedArrayBuffer(4));
  #posted = 0;
  /** The number of each batch posted to the worker, by its memory. */
  readonly #postedAs = new WeakMap<ArrayBufferLike, number>();
  #failure: Error | undefined;
  #finished: Promise<void> | undefined;
  #resolveFinished: (() => void) | undefined;

  /** A file begins; `onHash` gets its hex SHA-256 when it was hashed (now or later). */
  open(onHash: (hex: string) => void): number {
    const id = this.#nextId++;
    this.#done.set(id, onHash);
    return id;
  }

  /** Bytes [start, end) of the current batch belong to file `id`. */
  range(id: number, start: number, end: number): void {
    if (end > start) this.#ranges.push(id, start, end);
  }

  /** File `id` has no more bytes. */
  close(id: number): void {
    this.#closes.push(id);
  }

  /**
   * The current batch is complete (`len` bytes of `buf`); `last`: no batch follows. Hashed by
   * the worker (started on the first batch that is not the last), or inline when the whole
   * backup was one batch.
   */
  batch(buf: Buffer, len: number, last: boolean): void {
    if (this.#failure) throw this.#failure;
    const ranges = this.#ranges;
    const closes = this.#closes;
    this.#ranges = [];
    this.#closes = [];
    if (!ranges.length && !closes.length) return;
    if (last && !this.#worker) {
      this.#deliver(hashRanges(this.#inline, createHash, buf.subarray(0, len), ranges, closes));
      return;
    }
    const w = this.#worker ?? this.#start();
    while (this.#posted - Atomics.load(this.#counter, 0) >= AHEAD) this.#wait();
    if (!(buf.buffer instanceof SharedArrayBuffer) || buf.byteOffset !== 0) throw new DbsError('INTERNAL', 'a batch for the hash worker is not a whole shared buffer');
    this.#postedAs.set(buf.buffer, this.#posted);
    w.postMessage({ sab: buf.buffer, len, ranges, closes, counter: this.#counter });
    this.#posted++;
  }

  /** `buf` may be filled again: the worker hashed what it was posted with (waits until then). */
  reusable(buf: Buffer): Buffer {
    const n = this.#postedAs.get(buf.buffer);
    if (n !== undefined) while (Atomics.load(this.#counter, 0) <= n) this.#wait();
    return buf;
  }

  #wait(): void {
    Atomics.wait(this.#counter, 0, Atomics.load(this.#counter, 0), 1000);
    if (this.#failure) throw this.#failure;
  }

  #start(): Worker {
    const w = new Worker(WORKER_SOURCE, { eval: true, env: {}, stdout: false, stderr: false });
    w.unref(); // never what keeps the process alive (a failed backup stops it; see stop())
    w.on('message', (m: { results?: [number, string][]; done?: boolean }) => {
      if (m.results) this.#deliver(m.results);
      if (m.done) this.#resolveFinished?.();
    });
    w.on('error', (e) => {
      this.#failure = new DbsError('BACKUP_FAILED', `the hash worker failed: ${e.message}`, { cause: e });
      this.#resolveFinished?.();
    });
    w.on('exit', (code) => {
      if (this.#worker === w && !this.#failure) {
        this.#failure = new DbsError('BACKUP_FAILED', `the hash worker exited with code ${code}`);
        this.#resolveFinished?.();
      }
    });
    this.#worker = w;
    return w;
  }

  #deliver(results: [number, string][]): void {
    for (const [id, hex] of results) {
      this.#done.get(id)?.(hex);
      this.#done.delete(id);
    }
  }

  /** Waits until every file's hash was delivered, then stops the worker. */
  async finish(): Promise<void> {
    if (this.#ranges.length || this.#closes.length) throw new DbsError('INTERNAL', 'content hashes left in no batch');
    const w = this.#worker;
    if (w) {
      this.#finished ??= new Promise<void>((resolve) => {
        this.#resolveFinished = resolve;
        w.postMessage({ end: true });
      });
      await this.#finished;
      this.#worker = undefined; // before the exit it causes
      await w.terminate();
    }
    if (this.#failure) throw this.#failure;
    if (this.#done.size) throw new DbsError('INTERNAL', `${this.#done.size} content hashes were never delivered`);
  }

  /** Stops the worker without waiting (a failed or aborted backup). */
  stop(): void {
    const w = this.#worker;
    this.#worker = undefined;
    void w?.terminate();
  }
}
