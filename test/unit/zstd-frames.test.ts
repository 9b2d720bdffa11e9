// Frame walking and multi-frame decompression (src/pipeline/zstd-frames.ts), against output of
// the real zstd and pzstd programs and of node:zlib.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zlibConstants, zstdCompressSync } from 'node:zlib';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { FrameEdgeKeeper, FrameSpans, ZstdFrameWalker, zstdFramesDecompress } from '../../src/pipeline/zstd-frames.js';
import { followFile } from '../../src/pipeline/programs.js';

/** Dump-like text: compressible but not trivially. */
function sample(bytes: number): Buffer {
  const lines: string[] = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const l = `INSERT INTO t VALUES (${i},'${randomBytes(12).toString('hex')}','${'x'.repeat(i % 50)}');\n`;
    lines.push(l);
    n += l.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

async function program(cmd: string, args: string[], input: Buffer): Promise<Buffer> {
  const r = await execa(cmd, args, { input, encoding: 'buffer', stripFinalNewline: false });
  return Buffer.from(r.stdout);
}

/** Feeds `data` in chunks of the given sizes (cycled). */
function chunked(data: Buffer, sizes: number[]): Readable {
  const parts: Buffer[] = [];
  for (let p = 0, i = 0; p < data.length; i++) {
    const n = sizes[i % sizes.length] as number;
    parts.push(data.subarray(p, p + n));
    p += n;
  }
  return Readable.from(parts);
}

async function decompress(src: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(src, zstdFramesDecompress(1 << 20), new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
  return Buffer.concat(out);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('zstd frames', () => {
  const raw = sample(9 * 1024 * 1024 + 12345);

  it('decompresses pzstd output (many frames, each after a skippable frame), whatever the chunking', async () => {
    const z = await program('pzstd', ['-1', '-p', '1', '-c'], raw);
    expect(z.readUInt32LE(0)).toBe(0x184d2a50); // pzstd's size hint comes first
    for (const sizes of [[1 << 20], [7, 3, 65536, 1], [z.length]]) {
      expect(sha(await decompress(chunked(z, sizes)))).toBe(sha(raw));
    }
    const w = new ZstdFrameWalker();
    w.feed(z);
    w.finish();
    expect(w.frames).toBe(Math.ceil(raw.length / (2 * 1024 * 1024)));
  });

  it('decompresses one frame of the zstd program, node:zlib frames, concatenations and empty input', async () => {
    const cli = await program('zstd', ['-1', '-q', '-c'], raw);
    expect(sha(await decompress(chunked(cli, [65536])))).toBe(sha(raw));
    const a = raw.subarray(0, 1000);
    const b = raw.subarray(1000, 500_000);
    const skip = Buffer.alloc(8 + 5);
    skip.writeUInt32LE(0x184d2a5f, 0);
    skip.writeUInt32LE(5, 4);
    const emptySkip = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]);
    const cat = Buffer.concat([zstdCompressSync(a), skip, emptySkip, zstdCompressSync(b), zstdCompressSync(Buffer.alloc(0))]);
    expect(sha(await decompress(chunked(cat, [3, 4096])))).toBe(sha(Buffer.concat([a, b])));
    const empty = await program('pzstd', ['-1', '-p', '1', '-c'], Buffer.alloc(0));
    expect((await decompress(Readable.from([empty]))).length).toBe(0);
  });

  it('decodes small frames ahead of the reader and big ones as a stream, in order, whatever the chunking', async () => {
    // Held whole and decoded ahead: many small frames, and one that decodes to far more than a
    // decoder ahead may queue (40 MiB of sevens in a few bytes). Streamed: a frame of more than
    // 8 MB stored. Between small ones, in order.
    const small = Array.from({ length: 12 }, (_, i) => (i % 2 ? randomBytes(300_000 + i) : sample(700_000 + i)));
    const bigStored = randomBytes(9 * 1024 * 1024);
    const bigRaw = Buffer.alloc(40 * 1024 * 1024, 7);
    const parts = [...small.slice(0, 5), bigStored, ...small.slice(5, 8), bigRaw, ...small.slice(8)];
    const z = Buffer.concat(parts.map((p) => zstdCompressSync(p)));
    const want = sha(Buffer.concat(parts));
    for (const sizes of [[1 << 20], [4096, 7, 333_333], [z.length]]) expect(sha(await decompress(chunked(z, sizes)))).toBe(want);
    // A damaged held frame fails the stream (its checksum, as the framed compressor writes it).
    const checked = (b: Buffer) => zstdCompressSync(b, { params: { [zlibConstants.ZSTD_c_checksumFlag]: 1 } });
    const bad = Buffer.concat([checked(small[0]!), checked(small[1]!)]);
    bad[bad.length - 100] ^= 0xff;
    await expect(decompress(Readable.from([bad]))).rejects.toThrow();
  });

  it('refuses a truncated stream, garbage and a stream without frames', async () => {
    const z = await program('pzstd', ['-1', '-p', '1', '-c'], raw);
    await expect(decompress(Readable.from([z.subarray(0, z.length - 1)]))).rejects.toThrow(/truncated/);
    await expect(decompress(Readable.from([Buffer.from('-- MariaDB dump, not compressed\n')]))).rejects.toThrow(/not a zstd stream/);
    await expect(decompress(Readable.from([], { objectMode: false }))).rejects.toThrow(/no frame/);
  });

  it('keeps the first and last frames of a framed stream and gives back its decompressed edges', async () => {
    const z = await program('pzstd', ['-1', '-p', '1', '-c'], raw);
    const keeper = new FrameEdgeKeeper(1 << 20);
    let passed = 0;
    await pipeline(chunked(z, [65536, 5]), keeper, new Writable({ write: (c: Buffer, _e, cb) => ((passed += c.length), cb()) }));
    expect(passed).toBe(z.length);
    const e = await keeper.edges();
    expect(e.frames).toBe(5);
    expect(sha(e.head)).toBe(sha(raw.subarray(0, e.head.length)));
    expect(e.head.length).toBe(2 * 1024 * 1024);
    expect(sha(e.tail)).toBe(sha(raw.subarray(raw.length - e.tail.length)));
    expect(e.tail.length).toBeGreaterThan(2 * 1024 * 1024); // the last two frames
    const one = new FrameEdgeKeeper(1 << 20);
    const small = await program('pzstd', ['-1', '-p', '1', '-c'], raw.subarray(0, 5000));
    await pipeline(Readable.from([small]), one, new Writable({ write: (_c, _e, cb) => cb() }));
    const e1 = await one.edges();
    expect([e1.frames, e1.head.equals(raw.subarray(0, 5000)), e1.tail.equals(raw.subarray(0, 5000))]).toEqual([1, true, true]);
  });

  it('decompresses with backpressure: a highly compressible frame is not inflated all at once', async () => {
    const zeros = await program('zstd', ['-1', '-q', '-c'], Buffer.alloc(256 * 1024 * 1024));
    expect(zeros.length).toBeLessThan(64 * 1024);
    const dec = zstdFramesDecompress(1 << 20);
    Readable.from([zeros]).pipe(dec);
    // Read one chunk, then wait: the Duplex must not run ahead by more than its buffers.
    const first = await new Promise<Buffer>((resolve) => dec.once('readable', () => resolve(dec.read() as Buffer)));
    expect(first.length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(dec.readableLength).toBeLessThan(8 * 1024 * 1024);
    let total = first.length;
    for await (const c of dec) total += (c as Buffer).length;
    expect(total).toBe(256 * 1024 * 1024);
  });

  it('follows a framed file while a slow writer appends to it: same bytes, same edges as the stream keeper', async () => {
    const z = await program('pzstd', ['-1', '-p', '1', '-c'], raw);
    const dir = mkdtempSync(join(tmpdir(), 'dbs-follow-'));
    try {
      const path = join(dir, 'f.zst');
      writeFileSync(join(dir, 'src.zst'), z);
      writeFileSync(path, '');
      // dd in pieces with pauses: the reader catches up with the end of the file many times.
      const pieces = Math.ceil(z.length / 262144);
      const writer = execa('sh', ['-c', `for i in $(seq 0 ${pieces - 1}); do dd if=src.zst bs=256K skip=$i count=1 status=none >> f.zst; sleep 0.05; done`], { cwd: dir });
      const done = writer.then(() => undefined);
      const spans = new FrameSpans();
      const hash = createHash('sha256');
      let bytes = 0;
      let reads = 0;
      await followFile(path, done, (c) => {
        spans.feed(c);
        hash.update(c);
        bytes += c.length;
        reads++;
      });
      expect([bytes, hash.digest('hex')]).toEqual([z.length, sha(z)]);
      expect(reads).toBeGreaterThanOrEqual(4);
      const fh = await open(path, 'r');
      const e = await spans.edges(fh).finally(() => fh.close());
      const keeper = new FrameEdgeKeeper(1 << 20);
      await pipeline(Readable.from([z]), keeper, new Writable({ write: (_c, _e, cb) => cb() }));
      const k = await keeper.edges();
      expect([e.frames, sha(e.head), sha(e.tail)]).toEqual([k.frames, sha(k.head), sha(k.tail)]);
      expect(sha(e.tail)).toBe(sha(raw.subarray(raw.length - e.tail.length)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('following fails with the writer, and a framed file cut inside a frame is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbs-follow-'));
    try {
      const path = join(dir, 'f.zst');
      const z = await program('pzstd', ['-1', '-p', '1', '-c'], raw);
      writeFileSync(path, z.subarray(0, z.length - 100));
      const failed = Promise.reject(new Error('writer failed on purpose'));
      await expect(followFile(path, failed, () => undefined)).rejects.toThrow(/on purpose/);
      const spans = new FrameSpans();
      await followFile(path, Promise.resolve(), (c) => spans.feed(c));
      const fh = await open(path, 'r');
      await expect(spans.edges(fh).finally(() => fh.close())).rejects.toThrow(/truncated/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
