// The Node tail in sync form (run.ts SyncTail): the programs execution with encryption reads
// the compressor's output through a FIFO into reused buffers. These tests pin that it is the
// path taken, that the stored bytes are right, and that every failure (program killed, pool
// failing midway, guard refusing) stores nothing and leaves no FIFO, no program and no upload.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PoolSink } from '../../src/core/artifacts.js';
import { spawnStreamingTool } from '../../src/engines/tool-stream.js';
import { DbsError } from '../../src/errors.js';
import { decompressStage } from '../../src/pipeline/stages.js';
import { AgeDecrypt, parseIdentities, type AgeIdentities } from '../../src/pipeline/stages/encrypt.js';
import { FrameEdgeCopier, FrameEdgeKeeper } from '../../src/pipeline/zstd-frames.js';
import { Secret } from '../../src/secret.js';
import { FaultyDriver } from '../../src/storage/faults.js';
import { LocalDriver } from '../../src/storage/local.js';
import { S3Driver } from '../../src/storage/s3.js';
import type { PoolDriver } from '../../src/storage/types.js';
import { generated } from '../support/streams.js';
import { childrenOf, killChildren } from '../support/ports.js';
import { servers, tempDir, testbed } from '../support/testbed.js';

// A private TMPDIR for this file's worker: the FIFO's folder is made there (os.tmpdir() reads it at each call).
const tmp = mkdtempSync(join(tmpdir(), 'dbs-synctail-'));
process.env.TMPDIR = tmp;

let s3: S3Driver;
let recipient: string;
let ids: AgeIdentities;
beforeAll(async () => {
  await servers('s3');
  const t = testbed().s3;
  s3 = new S3Driver({ endpoint: t.endpoint, region: t.region, bucket: `synctail-${randomBytes(4).toString('hex')}`, prefix: '', pathStyle: true, accessKey: t.accessKey, secretKey: new Secret(t.secretKey) });
  await s3.ensureBucket(true);
  const identity = await generateIdentity();
  recipient = await identityToRecipient(identity);
  ids = await parseIdentities(identity, 'test key');
});
afterAll(async () => {
  await s3?.close();
});

/** Names of the FIFO folders made while `fn` ran (the FIFO path was taken when one was). */
async function fifosDuring<T>(fn: () => Promise<T>): Promise<{ result: T; made: string[] }> {
  const made: string[] = [];
  const w = watch(tmp, (_ev, name) => {
    if (name?.startsWith('dbs-pipe-') && !made.includes(name)) made.push(name);
  });
  try {
    const result = await fn();
    return { result, made };
  } finally {
    w.close();
  }
}

function childPrograms(): string[] {
  return childrenOf(process.pid).map((p) => p.comm);
}

async function leftovers(driver: PoolDriver, dir: string | undefined, prefix: string): Promise<string[]> {
  const left: string[] = [];
  for await (const o of driver.list(prefix)) left.push(o.key);
  for await (const u of driver.listIncomplete('')) left.push(`incomplete ${u.key}`);
  if (dir) for (const f of readdirSync(dir, { recursive: true, withFileTypes: true })) if (f.isFile()) left.push(f.name);
  return left;
}

const decrypt = async (driver: PoolDriver, key: string): Promise<Buffer> => buffer((await driver.get(key)).pipe(new AgeDecrypt(ids, 'test artifact')).pipe(decompressStage('zstd')!));

const seq = (n: number, stdout: Parameters<Parameters<PoolSink['writeTool']>[2]>[0], signal: AbortSignal) =>
  spawnStreamingTool('sh', ['-c', `seq 1 ${n}`], { stdout, signal, env: { PATH: process.env.PATH ?? '' }, log: () => undefined, secrets: [] });

class PassGuard extends Transform {
  edges?: { head: Buffer; tail: Buffer; rawBytes: number };
  constructor(readonly fail = false) {
    super();
  }
  override _transform(c: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    cb(null, c);
  }
  takeEdges(e: { head: Buffer; tail: Buffer; rawBytes: number }): void {
    this.edges = e;
  }
  override _flush(cb: TransformCallback): void {
    cb(this.fail ? new DbsError('BACKUP_FAILED', 'the guard refused the stream on purpose') : null);
  }
}

describe.each(['local', 's3'] as const)('sync tail: %s pool, execution programs, encrypted', (pool) => {
  const open = (wrap?: (d: PoolDriver) => PoolDriver) => {
    const dir = pool === 'local' ? tempDir('pool') : undefined;
    const base: PoolDriver = dir ? new LocalDriver(dir) : s3;
    const driver = wrap ? wrap(base) : base;
    const prefix = `p${randomBytes(3).toString('hex')}`;
    const sink = new PoolSink({ driver, planId: prefix, backupId: 'b1', compression: 'zstd', recipients: [recipient], execution: 'programs', signal: new AbortController().signal });
    return { driver: base, dir, sink, prefix };
  };

  it('a tool source: takes the FIFO path, stores age bytes that decrypt to the input, and the guard gets the edges', async () => {
    const { driver, sink } = open();
    const guard = new PassGuard();
    const ac = new AbortController();
    const { result: art, made } = await fifosDuring(() => sink.writeTool('out', { extension: '.txt', guard: 'edges' }, (stdout) => ({ stdout: seq(3_000_000, stdout, ac.signal).stdout, inspector: guard })));
    expect(made.length).toBe(1);
    const expected = Buffer.from(Array.from({ length: 3_000_000 }, (_, i) => `${i + 1}\n`).join(''));
    expect(art).toMatchObject({ execution: 'programs', rawBytes: expected.length, stages: ['compress:zstd-1', 'encrypt:age', 'sha256'] });
    const stored = await buffer(await driver.get(art.key));
    expect(stored.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    expect(stored.length).toBe(art.storedBytes);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(art.sha256);
    expect((await decrypt(driver, art.key)).equals(expected)).toBe(true);
    expect(guard.edges!.rawBytes).toBe(expected.length);
    expect(expected.subarray(0, guard.edges!.head.length).equals(guard.edges!.head)).toBe(true);
    expect(expected.subarray(expected.length - guard.edges!.tail.length).equals(guard.edges!.tail)).toBe(true);
    expect(readdirSync(tmp).filter((n) => n.startsWith('dbs-pipe-'))).toEqual([]);
  });

  it('a stream source: the raw count is Node own, the bytes decrypt to the input', async () => {
    const { driver, sink } = open();
    const src = generated(20);
    const { result: art, made } = await fifosDuring(() => sink.write('data', src, { extension: '.bin' }));
    expect(made.length).toBe(1);
    expect(art).toMatchObject({ execution: 'programs', rawBytes: 20 << 20 });
    expect(createHash('sha256').update(await decrypt(driver, art.key)).digest('hex')).toBe(src.digest());
  });

  it('the compressor killed midway: the error names it, nothing stored, no FIFO or program left', async () => {
    const { driver, dir, sink, prefix } = open();
    const ac = new AbortController();
    const killer = setInterval(() => killChildren(/^p?zstd$/), 50);
    let e: unknown;
    try {
      e = await sink.writeTool('out', { extension: '.txt', guard: 'edges' }, (stdout) => ({ stdout: seq(50_000_000, stdout, ac.signal).stdout, inspector: new PassGuard() })).catch((x: unknown) => x);
    } finally {
      clearInterval(killer);
      ac.abort();
    }
    expect(String(e)).toMatch(/zstd .*failed \(killed by SIGKILL\)/);
    expect(await leftovers(driver, dir, prefix)).toEqual([]);
    expect(readdirSync(tmp).filter((n) => n.startsWith('dbs-pipe-'))).toEqual([]);
    expect(childPrograms().filter((n) => /zstd/.test(n))).toEqual([]);
  });

  it('the pool failing midway: the put error is the error, the compressor is stopped, nothing stored', async () => {
    const { driver, dir, sink, prefix } = open((d) => new FaultyDriver(d, { failPut: { afterBytes: 3 << 20, error: new DbsError('IO_ERROR', 'the pool failed on purpose') } }));
    const ac = new AbortController();
    const e = await sink.writeTool('out', { extension: '.txt', guard: 'edges' }, (stdout) => ({ stdout: seq(30_000_000, stdout, ac.signal).stdout, inspector: new PassGuard() })).catch((x: unknown) => x);
    ac.abort();
    expect(e).toMatchObject({ code: 'IO_ERROR', message: expect.stringMatching(/on purpose/) });
    expect(await leftovers(driver, dir, prefix)).toEqual([]);
    expect(readdirSync(tmp).filter((n) => n.startsWith('dbs-pipe-'))).toEqual([]);
    await new Promise((r) => setTimeout(r, 200));
    expect(childPrograms().filter((n) => /zstd/.test(n))).toEqual([]);
  });

  it('the task aborted midway (a signal): nothing stored, no FIFO or program left', async () => {
    const dir = pool === 'local' ? tempDir('pool') : undefined;
    const driver: PoolDriver = dir ? new LocalDriver(dir) : s3;
    const prefix = `p${randomBytes(3).toString('hex')}`;
    const ac = new AbortController();
    const sink = new PoolSink({ driver, planId: prefix, backupId: 'b1', compression: 'zstd', recipients: [recipient], execution: 'programs', signal: ac.signal });
    setTimeout(() => ac.abort(new DbsError('INTERRUPTED', 'stopped on purpose')), 300);
    const e = await sink.writeTool('out', { extension: '.txt', guard: 'edges' }, (stdout) => ({ stdout: seq(100_000_000, stdout, ac.signal).stdout, inspector: new PassGuard() })).catch((x: unknown) => x);
    expect(e).toMatchObject({ message: expect.stringMatching(/on purpose/) });
    expect(await leftovers(driver, dir, prefix)).toEqual([]);
    expect(readdirSync(tmp).filter((n) => n.startsWith('dbs-pipe-'))).toEqual([]);
    await new Promise((r) => setTimeout(r, 200));
    expect(childPrograms().filter((n) => /zstd|seq/.test(n))).toEqual([]);
  });

  it("a guard that refuses at the end stores nothing, and its error is the error", async () => {
    const { driver, dir, sink, prefix } = open();
    const ac = new AbortController();
    const e = await sink.writeTool('out', { extension: '.txt', guard: 'edges' }, (stdout) => ({ stdout: seq(500_000, stdout, ac.signal).stdout, inspector: new PassGuard(true) })).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'BACKUP_FAILED', message: expect.stringMatching(/on purpose/) });
    expect(await leftovers(driver, dir, prefix)).toEqual([]);
  });
});

describe('FrameEdgeCopier', () => {
  it('keeps the same edges as FrameEdgeKeeper, whatever the chunking, with the buffer reused', async () => {
    const { zstdCompressSync } = await import('node:zlib');
    for (const frames of [1, 2, 3, 7]) {
      const raw = Array.from({ length: frames }, (_, i) => randomBytes(1000 + i * 50_000).toString('base64'));
      const stream = Buffer.concat(raw.map((r) => zstdCompressSync(Buffer.from(r))));
      for (const piece of [1, 7, 4096, 65_536, stream.length]) {
        const keeper = new FrameEdgeKeeper(1 << 20);
        keeper.resume();
        const copier = new FrameEdgeCopier();
        const reused = Buffer.alloc(piece);
        for (let off = 0; off < stream.length; off += piece) {
          const n = Math.min(piece, stream.length - off);
          keeper.write(Buffer.from(stream.subarray(off, off + n)));
          stream.copy(reused, 0, off, off + n);
          copier.feed(reused.subarray(0, n));
          reused.fill(0xee); // what a reused buffer holds next: the copier must not have kept it
        }
        keeper.end();
        await new Promise((r) => keeper.once('finish', r));
        const [a, b] = [await keeper.edges(), await copier.edges()];
        expect(b.frames).toBe(frames);
        expect(b.head.equals(a.head)).toBe(true);
        expect(b.tail.equals(a.tail)).toBe(true);
        expect(b.head.toString()).toBe(raw[0]);
        expect(b.tail.toString()).toBe(raw.slice(-2).join('').slice(frames === 1 ? raw[0]!.length : 0) || raw[0]);
      }
    }
  });

  it('a stream cut inside a frame is an error', async () => {
    const { zstdCompressSync } = await import('node:zlib');
    const stream = zstdCompressSync(Buffer.from('x'.repeat(100_000)));
    const copier = new FrameEdgeCopier();
    copier.feed(stream.subarray(0, stream.length - 3));
    await expect(copier.edges()).rejects.toThrow();
  });
});
