// The bandwidth cap: one token bucket and the pool wrapper that spends it. Every byte a put
// sends and every byte a get returns takes tokens first; all wrapped drivers of a process
// share one bucket (core/gateway.ts holds it), so concurrent tasks of a daemon, uploads and
// downloads together, stay within one budget.
//
// Why not an npm package: `limiter` (TokenBucket) cannot be aborted while it waits (an abort
// must end a transfer at once, however low the cap), serves waiters in no order (a big chunk
// can starve behind small ones) and refuses a request larger than the bucket; `stream-throttle`
// (2014) builds on an old `limiter`. This one is ~60 lines: FIFO waiters, one timer, a debt
// model for chunks larger than the burst, abortable waits.
import { Readable } from 'node:stream';
import { WrappedDriver, type PoolWrapper } from './wrap.js';
import type { GetOptions, PoolDriver, PutBody, PutOptions, PutResult } from './types.js';
import { iterateBody } from './body.js';

/** Bytes a transfer asks for at a time: small enough to keep the rate smooth. */
const SLICE = 64 * 1024;

interface Waiter {
  n: number;
  resolve(): void;
  reject(e: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class TokenBucket {
  #rate: number;
  #tokens: number;
  #last: number;
  readonly #queue: Waiter[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** Bytes granted so far (for metering and tests). */
  granted = 0;

  /** `rate` in bytes per second; the burst is a quarter second's worth (at least 64 KiB). */
  readonly now: () => number;

  constructor(rate: number, now: () => number = () => performance.now()) {
    this.now = now;
    this.#rate = rate;
    this.#tokens = this.#burst();
    this.#last = this.now();
  }

  get rate(): number {
    return this.#rate;
  }

  /** Changes the rate (a gateway update while a daemon runs); waiters are served at the new one. */
  setRate(rate: number): void {
    if (rate === this.#rate) return;
    this.#refill();
    this.#rate = rate;
    this.#tokens = Math.min(this.#tokens, this.#burst());
    this.#schedule();
  }

  #burst(): number {
    return Math.max(SLICE, this.#rate / 4);
  }

  #refill(): void {
    const t = this.now();
    this.#tokens = Math.min(this.#burst(), this.#tokens + ((t - this.#last) / 1000) * this.#rate);
    this.#last = t;
  }

  /**
   * Waits until `n` bytes may pass, in the order asked. A request larger than the burst is
   * granted once the bucket is full and leaves it in debt, so the long-run rate holds.
   * Rejects with the signal's reason when it aborts first.
   */
  take(n: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.#refill();
    if (this.#queue.length === 0 && this.#tokens >= Math.min(n, this.#burst())) {
      this.#tokens -= n;
      this.granted += n;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { n, resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.#queue.indexOf(w);
          if (i >= 0) this.#queue.splice(i, 1);
          reject(signal.reason);
          this.#schedule();
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#queue.push(w);
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#refill();
    while (this.#queue.length) {
      const w = this.#queue[0]!;
      const need = Math.min(w.n, this.#burst());
      if (this.#tokens < need) {
        const ms = Math.max(1, Math.ceil(((need - this.#tokens) / this.#rate) * 1000));
        this.#timer = setTimeout(() => this.#schedule(), ms);
        return;
      }
      this.#queue.shift();
      this.#tokens -= w.n;
      this.granted += w.n;
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.resolve();
    }
  }
}

/** Yields the body's bytes in slices, each after the bucket granted it. */
async function* throttled(source: AsyncIterable<Uint8Array>, bucket: TokenBucket, signal?: AbortSignal): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let off = 0; off < buf.length; off += SLICE) {
      const slice = buf.subarray(off, off + SLICE);
      await bucket.take(slice.length, signal);
      yield slice;
    }
  }
}

/** A driver whose put bodies and get streams pass the bucket (storage/wrap.ts). */
export class ThrottledDriver extends WrappedDriver {
  readonly bucket: TokenBucket;

  constructor(inner: PoolDriver, bucket: TokenBucket) {
    super(inner);
    this.bucket = bucket;
  }

  override put(key: string, body: PutBody, options?: PutOptions): Promise<PutResult> {
    return this.inner.put(key, throttled(iterateBody(body), this.bucket, options?.signal), options);
  }

  override async get(key: string, options?: GetOptions): Promise<Readable> {
    const stream = await this.inner.get(key, options);
    return Readable.from(throttled(stream, this.bucket, options?.signal), { objectMode: false });
  }
}

/** The wrapper that caps a pool's traffic with `bucket`. */
export function throttleWrapper(bucket: TokenBucket): PoolWrapper {
  return (driver) => new ThrottledDriver(driver, bucket);
}
