// A fault-injecting driver wrapper, for tests of what dbs does when a pool misbehaves:
//   - failPut: a put whose body fails after N bytes (the inner driver sees its source error,
//     as when a dump dies midway; it must leave no object and no multipart upload);
//   - stall: a put or get that stops making progress after N bytes until its signal aborts
//     (a delete: one that does not return until its signal aborts, a slow or hung pool);
//   - refuse: a call (method, optionally by key) rejects with a given DbsError;
//   - corrupt: get() returns the object with the byte at offset N flipped.
// Faults apply to keys matching `key` (all keys when absent). A wrapped driver offers no
// openFile() (see wrap.ts), so no byte can reach the pool around these faults.
import { Readable, Transform, pipeline } from 'node:stream';
import { DbsError } from '../errors.js';
import { iterateBody } from './body.js';
import { WrappedDriver, type PoolWrapper } from './wrap.js';
import type { GetOptions, IncompleteUpload, ObjectInfo, OpOptions, PoolDriver, PutBody, PutOptions, PutResult } from './types.js';

export type FaultMethod = 'put' | 'get' | 'stat' | 'list' | 'delete' | 'listIncomplete' | 'abortIncomplete';

export interface Faults {
  /** put() bodies fail after this many bytes, with `error` (default IO_ERROR). */
  failPut?: { afterBytes: number; key?: RegExp; error?: DbsError };
  /** put() or get() stops after `afterBytes` bytes (default 0) until its signal aborts; delete() hangs until it aborts. */
  stall?: { method: 'put' | 'get' | 'delete'; afterBytes?: number; key?: RegExp };
  /** The call rejects with `error`; `times` times (default: every time). Key: the key or prefix. */
  refuse?: { method: FaultMethod; error: DbsError; key?: RegExp; times?: number }[];
  /** get() flips (xor 0xff) the byte at this offset of the object. */
  corrupt?: { offset: number; key?: RegExp };
  /** Told of every fault as it fires, e.g. "put dbs/x: failed after 100 bytes". */
  onFault?: (what: string) => void;
}

/** A wrapper injecting `faults` into every driver it wraps. */
export function faultWrapper(faults: Faults): PoolWrapper {
  return (driver) => new FaultyDriver(driver, faults);
}

const matches = (re: RegExp | undefined, key: string): boolean => !re || re.test(key);

/** Rejects with the signal's reason when it aborts; never settles without a signal. */
function untilAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (!signal) return;
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

export class FaultyDriver extends WrappedDriver {
  readonly #f: Faults;
  readonly #refusals: { method: FaultMethod; error: DbsError; key?: RegExp; left: number }[];

  constructor(inner: PoolDriver, faults: Faults) {
    super(inner);
    this.#f = faults;
    this.#refusals = (faults.refuse ?? []).map((r) => ({ ...r, left: r.times ?? Infinity }));
  }

  #note(what: string): void {
    this.#f.onFault?.(what);
  }

  #refused(method: FaultMethod, key: string): DbsError | undefined {
    const r = this.#refusals.find((x) => x.method === method && x.left > 0 && matches(x.key, key));
    if (!r) return undefined;
    r.left--;
    this.#note(`${method} ${key}: refused (${r.error.code})`);
    return r.error;
  }

  override async put(key: string, body: PutBody, options: PutOptions = {}): Promise<PutResult> {
    const refused = this.#refused('put', key);
    if (refused) throw refused;
    const { stall, failPut } = this.#f;
    let wrapped: PutBody = body;
    if (stall?.method === 'put' && matches(stall.key, key)) wrapped = this.#stalledBody(key, wrapped, stall.afterBytes ?? 0, options.signal);
    if (failPut && matches(failPut.key, key)) wrapped = this.#failingBody(key, wrapped, failPut.afterBytes, failPut.error);
    return this.inner.put(key, wrapped, options);
  }

  async *#failingBody(key: string, body: PutBody, after: number, error: DbsError | undefined): AsyncIterable<Buffer> {
    let seen = 0;
    for await (const chunk of iterateBody(body)) {
      if (seen + chunk.length > after) {
        if (after > seen) yield chunk.subarray(0, after - seen);
        this.#note(`put ${key}: failed after ${after} bytes`);
        throw error ?? new DbsError('IO_ERROR', `${this.location}: cannot write ${key}: injected fault after ${after} bytes`);
      }
      seen += chunk.length;
      yield chunk;
    }
  }

  async *#stalledBody(key: string, body: PutBody, after: number, signal: AbortSignal | undefined): AsyncIterable<Buffer> {
    let seen = 0;
    const stall = async (): Promise<never> => {
      this.#note(`put ${key}: stalled after ${seen} bytes`);
      return untilAborted(signal);
    };
    for await (const chunk of iterateBody(body)) {
      if (seen + chunk.length >= after) {
        if (after > seen) yield chunk.subarray(0, after - seen);
        seen = after;
        await stall();
      }
      seen += chunk.length;
      yield chunk;
    }
    await stall(); // a body shorter than `after` never ends either
  }

  override async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const refused = this.#refused('get', key);
    if (refused) throw refused;
    let out = await this.inner.get(key, options);
    const { corrupt, stall } = this.#f;
    if (corrupt && matches(corrupt.key, key)) out = this.#corrupted(key, out, corrupt.offset, options.range?.start ?? 0);
    if (stall?.method === 'get' && matches(stall.key, key)) out = this.#stalled(key, out, stall.afterBytes ?? 0, options.signal);
    return out;
  }

  #corrupted(key: string, src: Readable, offset: number, start: number): Readable {
    let pos = start;
    const note = () => this.#note(`get ${key}: flipped the byte at offset ${offset}`);
    const t = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        const i = offset - pos;
        pos += chunk.length;
        if (i < 0 || i >= chunk.length) return cb(null, chunk);
        const copy = Buffer.from(chunk);
        copy[i] ^= 0xff;
        note();
        cb(null, copy);
      },
    });
    return pipeline(src, t, () => undefined);
  }

  #stalled(key: string, src: Readable, after: number, signal: AbortSignal | undefined): Readable {
    let seen = 0;
    const note = () => this.#note(`get ${key}: stalled after ${seen} bytes`);
    // Not calling back is the stall: upstream stops, nothing more comes out, the end never does.
    const t = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        const room = after - seen;
        if (room > chunk.length) {
          seen += chunk.length;
          return cb(null, chunk);
        }
        if (room > 0) this.push(chunk.subarray(0, room));
        seen = after;
        note();
      },
      flush() {
        note();
      },
    });
    if (signal) {
      const onAbort = () => t.destroy(signal.reason);
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        t.once('close', () => signal.removeEventListener('abort', onAbort));
      }
    }
    return pipeline(src, t, () => undefined);
  }

  override async stat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined> {
    const refused = this.#refused('stat', key);
    if (refused) throw refused;
    return this.inner.stat(key, options);
  }

  override async *list(prefix: string, options?: OpOptions): AsyncIterable<ObjectInfo> {
    const refused = this.#refused('list', prefix);
    if (refused) throw refused;
    yield* this.inner.list(prefix, options);
  }

  override async delete(key: string, options?: OpOptions): Promise<void> {
    const refused = this.#refused('delete', key);
    if (refused) throw refused;
    const { stall } = this.#f;
    if (stall?.method === 'delete' && matches(stall.key, key)) {
      this.#note(`delete ${key}: stalled`);
      await untilAborted(options?.signal);
    }
    return this.inner.delete(key, options);
  }

  override async *listIncomplete(prefix: string, options?: OpOptions): AsyncIterable<IncompleteUpload> {
    const refused = this.#refused('listIncomplete', prefix);
    if (refused) throw refused;
    yield* this.inner.listIncomplete(prefix, options);
  }

  override async abortIncomplete(prefix: string, options?: OpOptions & { olderThan?: Date }): Promise<number> {
    const refused = this.#refused('abortIncomplete', prefix);
    if (refused) throw refused;
    return this.inner.abortIncomplete(prefix, options);
  }
}
