// Driver decorators. A wrapper is a PoolDriver around another one (faults for tests; later
// throttle and metering): WrappedDriver forwards every method, a subclass overrides the ones
// it changes.
//
// openFile() is NOT forwarded: it hands a raw descriptor to a child process, whose bytes no
// wrapper sees, so a fault, a throttle or a meter would be bypassed. A wrapped driver does not
// offer it and its capabilities say `localFiles: false`; callers then write through put().
import type { Readable } from 'node:stream';
import type { GetOptions, IncompleteUpload, ObjectInfo, OpOptions, PoolCapabilities, PoolDriver, PutBody, PutOptions, PutResult } from './types.js';

/** Builds a wrapper around a driver; the run context carries a list of them (core/pools.ts). */
export type PoolWrapper = (driver: PoolDriver) => PoolDriver;

export class WrappedDriver implements PoolDriver {
  readonly inner: PoolDriver;
  readonly capabilities: PoolCapabilities;

  constructor(inner: PoolDriver) {
    this.inner = inner;
    this.capabilities = { ...inner.capabilities, localFiles: false, serverSideCopy: false };
  }

  get type(): string {
    return this.inner.type;
  }

  get location(): string {
    return this.inner.location;
  }

  put(key: string, body: PutBody, options?: PutOptions): Promise<PutResult> {
    return this.inner.put(key, body, options);
  }

  get(key: string, options?: GetOptions): Promise<Readable> {
    return this.inner.get(key, options);
  }

  stat(key: string, options?: OpOptions): Promise<ObjectInfo | undefined> {
    return this.inner.stat(key, options);
  }

  list(prefix: string, options?: OpOptions): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, options);
  }

  delete(key: string, options?: OpOptions): Promise<void> {
    return this.inner.delete(key, options);
  }

  listIncomplete(prefix: string, options?: OpOptions): AsyncIterable<IncompleteUpload> {
    return this.inner.listIncomplete(prefix, options);
  }

  abortIncomplete(prefix: string, options?: OpOptions & { olderThan?: Date }): Promise<number> {
    return this.inner.abortIncomplete(prefix, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Applies wrappers in order: the first given is innermost. */
export function wrapDriver(driver: PoolDriver, wrappers: readonly PoolWrapper[] | undefined): PoolDriver {
  return (wrappers ?? []).reduce((d, w) => w(d), driver);
}
