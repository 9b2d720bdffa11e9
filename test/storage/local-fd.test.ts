// The local driver's temp file has one owner, its FileHandle: a put that fails or is aborted
// must not let the WriteStream close the fd as well. That second close once hit a number that
// another open had reused meanwhile, and Node aborted the test worker ("Assertion failed: (0) ==
// (uv_fs_close(...))" in readFileSync of /proc/self/stat). Needs no server.
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalDriver } from '../../src/storage/local.js';
import { tempDir } from '../support/testbed.js';

/** The CJS fs module object, whose `close` property the streams call. */
const fs = createRequire(import.meta.url)('node:fs') as { close: (...a: unknown[]) => void };

describe('local driver: one close per temp file', () => {
  const closes: number[] = [];
  const original = fs.close;
  beforeEach(() => {
    closes.length = 0;
    // Streams call fs.close (the module's property, looked up at call time); a FileHandle does not.
    fs.close = (fd: unknown, ...rest: unknown[]) => {
      closes.push(fd as number);
      original.call(fs, fd, ...rest);
    };
  });
  afterEach(() => {
    fs.close = original;
  });

  async function* failing(): AsyncGenerator<Buffer> {
    for (let i = 0; i < 8; i++) yield Buffer.alloc(1 << 20, i);
    throw new Error('source failed on purpose');
  }

  it('a put whose source fails: the stream never closes the fd, nothing is left', async () => {
    const root = tempDir('pool');
    const d = new LocalDriver(root);
    await expect(d.put('a/x.bin', failing())).rejects.toThrow(/source failed on purpose/);
    expect(closes).toEqual([]);
    expect(readdirSync(root).filter((n) => n !== 'a')).toEqual([]);
  });

  it('an aborted put: the stream never closes the fd, nothing is left', async () => {
    const root = tempDir('pool');
    const d = new LocalDriver(root);
    const ac = new AbortController();
    async function* slow(): AsyncGenerator<Buffer> {
      for (let i = 0; ; i++) {
        yield Buffer.alloc(1 << 20, i);
        if (i === 3) ac.abort(new Error('stop'));
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    await expect(d.put('a/y.bin', slow(), { signal: ac.signal })).rejects.toThrow();
    expect(closes).toEqual([]);
    expect(await d.stat('a/y.bin')).toBeUndefined();
  });

  it('a put that succeeds still writes every byte (the stream writes, the handle closes)', async () => {
    const d = new LocalDriver(tempDir('pool'));
    async function* ok(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 5; i++) yield Buffer.alloc(1 << 20, i);
    }
    expect((await d.put('a/z.bin', ok())).size).toBe(5 << 20);
    expect((await d.stat('a/z.bin'))?.size).toBe(5 << 20);
    expect(closes).toEqual([]);
  });
});
