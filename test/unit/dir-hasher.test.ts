// The dir engine's content hasher: the SHA-256 of each file's ranges, whether the ranges are
// hashed by its worker thread (more than one batch) or inline (one batch), for files that
// span batches, empty files, and more batches than the worker may lag behind (reused buffers).
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ContentHasher, sharedBatch } from '../../src/engines/dir/hasher.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Lays `files` out in batches of `size` as the walk does; returns the hashes it got. */
async function run(files: Buffer[], size: number, reuse: boolean): Promise<string[]> {
  const h = new ContentHasher();
  const got: string[] = [];
  const free: Buffer[] = [];
  let buf = sharedBatch(size);
  let len = 0;
  const drain = (last: boolean) => {
    h.batch(buf, len, last);
    if (reuse) free.push(buf);
    // Reuse a batch only as the walk does: after the worker is done with it.
    buf = last ? Buffer.alloc(0) : free.length > 2 ? h.reusable(free.shift()!) : sharedBatch(size);
    if (!last) buf.fill(0xee); // scribbles over a reused batch: a hash read too late would differ
    len = 0;
  };
  files.forEach((f, i) => {
    const id = h.open((hex) => (got[i] = hex));
    let pos = 0;
    while (pos < f.length) {
      const k = f.copy(buf, len, pos);
      h.range(id, len, len + k);
      len += k;
      pos += k;
      if (len === size) drain(false);
    }
    h.close(id);
  });
  drain(true);
  await h.finish();
  return got;
}

describe('dir content hasher', () => {
  const files = [randomBytes(10), Buffer.alloc(0), randomBytes(3000), randomBytes(1), randomBytes(9000), Buffer.alloc(0), randomBytes(700)];

  it('hashes inline when everything is one batch', async () => {
    expect(await run(files, 1 << 20, false)).toEqual(files.map(sha));
  });

  it('hashes in its worker across many batches (files spanning batches, empty files)', async () => {
    expect(await run(files, 1024, false)).toEqual(files.map(sha));
  });

  it('hashes right when batches are reused and overwritten as soon as it allows', async () => {
    const many = Array.from({ length: 60 }, (_, i) => randomBytes(100 + ((i * 977) % 5000)));
    expect(await run(many, 4096, true)).toEqual(many.map(sha));
  });

  it('refuses a batch that is not shared memory once the worker runs', () => {
    const h = new ContentHasher();
    const id = h.open(() => undefined);
    h.range(id, 0, 10);
    expect(() => h.batch(Buffer.alloc(16), 16, false)).toThrow(/not a whole shared buffer/);
    h.stop();
  });
});
