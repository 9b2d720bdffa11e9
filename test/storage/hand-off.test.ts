// A tool's stdout reaches the pool whole, however late the sink starts reading it.
//
// The hand-off paths give the tool's stdout pipe to pzstd/zstd (no Node hop). Until session 5
// Node's own socket on that pipe was live from the spawn: execa (buffer: false) resumes an
// unread stdout after one setImmediate and drops what it reads, so every byte the tool wrote
// before the hand-off was lost. A dump whose tool started faster than dbs reached the hand-off
// (a loaded CI machine) was stored without its first 3 MB, looked complete, and failed only at
// restore. These tests write before the sink starts, on every data path, and compare bytes.
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PoolSink } from '../../src/core/artifacts.js';
import { spawnStreamingTool } from '../../src/engines/tool-stream.js';
import type { StreamEdges } from '../../src/engines/types.js';
import { decompressStage, type Compression } from '../../src/pipeline/stages.js';
import { Secret } from '../../src/secret.js';
import { LocalDriver } from '../../src/storage/local.js';
import { S3Driver } from '../../src/storage/s3.js';
import type { PoolDriver } from '../../src/storage/types.js';
import { servers, tempDir, testbed } from '../support/testbed.js';

beforeAll(() => servers('s3'));

/** An inspector that sees the whole stream (the zstd hand-off gives it a decompressed copy). */
class Head extends Transform {
  head = '';
  override _transform(c: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.head.length < 20) this.head += c.subarray(0, 20).toString();
    cb(null, c);
  }
}

/** An inspector for the framed paths: it gets the edges only. */
class EdgeRecorder extends Head {
  takeEdges(e: StreamEdges): void {
    this.head = e.head.subarray(0, 20).toString();
  }
}

// 2,000,000 lines, 14.9 MB: more than a pipe and a socket buffer hold, written at once.
const SCRIPT = 'seq 1 2000000';
let expected: { bytes: number; sha256: string; head: string };
let s3: S3Driver;

beforeAll(async () => {
  const r = await execa('sh', ['-c', SCRIPT], { encoding: 'buffer', stripFinalNewline: false });
  const out = Buffer.from(r.stdout);
  expected = { bytes: out.length, sha256: createHash('sha256').update(out).digest('hex'), head: out.subarray(0, 20).toString() };
  const t = testbed().s3;
  s3 = new S3Driver({ endpoint: t.endpoint, region: t.region, bucket: `handoff-${randomBytes(4).toString('hex')}`, prefix: '', pathStyle: true, accessKey: t.accessKey, secretKey: new Secret(t.secretKey) });
  await s3.ensureBucket(true);
});

afterAll(async () => {
  await s3?.close();
});

type Inspect = 'edges' | 'stream' | 'none';

async function storeLate(driver: PoolDriver, compression: Compression, inspect: Inspect): Promise<Buffer> {
  const ac = new AbortController();
  const tool = spawnStreamingTool('sh', ['-c', SCRIPT], { signal: ac.signal, env: { PATH: process.env.PATH ?? '' }, log: () => undefined, secrets: [] });
  // The tool writes all it can while dbs is busy elsewhere (here: asleep).
  await sleep(300);
  const sink = new PoolSink({ driver, planId: 'p', backupId: `b${randomBytes(3).toString('hex')}`, compression, signal: ac.signal });
  const inspector = inspect === 'edges' ? new EdgeRecorder() : inspect === 'stream' ? new Head() : undefined;
  const art = await sink.write('out', tool.stdout, { extension: '.txt', ...(inspector ? { inspector } : {}) });
  expect((await tool.exit).exitCode).toBe(0);
  const dec = decompressStage(compression);
  const src = await driver.get(art.key);
  const body = await buffer(dec ? src.pipe(dec) : src);
  if (inspector) expect(inspector.head.slice(0, 20)).toBe(expected.head);
  expect(art.rawBytes).toBe(expected.bytes);
  return body;
}

describe('a tool that writes before the sink reads', () => {
  const cases: [string, () => PoolDriver, Compression, Inspect][] = [
    ['local pool, framed (pzstd writes the pool file)', () => new LocalDriver(tempDir('pool')), 'zstd', 'edges'],
    ['S3 pool, framed (pzstd reads the pipe, Node uploads)', () => s3, 'zstd', 'edges'],
    ['local pool, zstd hand-off with a decompressed copy for the inspector', () => new LocalDriver(tempDir('pool')), 'zstd', 'stream'],
    ['local pool, zstd in Node without an inspector', () => new LocalDriver(tempDir('pool')), 'zstd', 'none'],
    ['S3 pool, gzip in Node', () => s3, 'gzip', 'stream'],
  ];
  for (const [name, driver, compression, inspect] of cases) {
    it(`loses no byte: ${name}`, async () => {
      const body = await storeLate(driver(), compression, inspect);
      // booleans, not toEqual: a failure must not print 15 MB
      expect(body.length).toBe(expected.bytes);
      expect(body.subarray(0, 20).toString()).toBe(expected.head);
      expect(createHash('sha256').update(body).digest('hex')).toBe(expected.sha256);
    });
  }
});
