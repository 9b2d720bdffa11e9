// A tool's stdout reaches the pool whole, on every execution of the data path, however late
// dbs gets to reading it.
//
// Until session 7 engines spawned their tool first and the sink later took its stdout pipe
// (and handed it to pzstd/zstd). Node's socket on that pipe was live from the spawn: execa
// (buffer: false) resumes an unread stdout after one setImmediate and drops what it reads, so
// every byte the tool wrote before the hand-off was lost; a dump stored without its first
// 3 MB looked complete and failed only at restore. Now the sink opens its input first and the
// tool is spawned into it (ArtifactSink.writeTool). These tests keep dbs busy right after the
// spawn while the tool writes 15 MB, on every execution, and compare bytes.
import { createHash, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PoolSink } from '../../src/core/artifacts.js';
import { spawnStreamingTool } from '../../src/engines/tool-stream.js';
import type { StreamEdges } from '../../src/engines/types.js';
import type { Execution, GuardMode } from '../../src/pipeline/plan.js';
import { decompressStage } from '../../src/pipeline/stages.js';
import { Secret } from '../../src/secret.js';
import { LocalDriver } from '../../src/storage/local.js';
import { S3Driver } from '../../src/storage/s3.js';
import type { PoolDriver } from '../../src/storage/types.js';
import { servers, tempDir, testbed } from '../support/testbed.js';

beforeAll(() => servers('s3'));

/** A guard that records the start of what it was shown (all bytes, or the edges). */
class Head extends Transform {
  head = '';
  edges = false;
  override _transform(c: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (this.head.length < 20) this.head += c.subarray(0, 20).toString();
    cb(null, c);
  }
  takeEdges(e: StreamEdges): void {
    this.edges = true;
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

/** Keeps the event loop (so Node's reading) away for `ms`, as a busy dbs would. */
function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // spin
  }
}

function sinkFor(driver: PoolDriver, execution: Execution): PoolSink {
  const ac = new AbortController();
  return new PoolSink({ driver, planId: 'p', backupId: `b${randomBytes(3).toString('hex')}`, compression: 'zstd', execution, signal: ac.signal });
}

async function storeBusy(driver: PoolDriver, execution: Execution, guard: GuardMode): Promise<{ body: Buffer; head: Head }> {
  const sink = sinkFor(driver, execution);
  const head = new Head();
  const ac = new AbortController();
  let exit: Promise<{ exitCode?: number }> | undefined;
  const art = await sink.writeTool('out', { extension: '.txt', guard }, (stdout) => {
    const tool = spawnStreamingTool('sh', ['-c', SCRIPT], { stdout, signal: ac.signal, env: { PATH: process.env.PATH ?? '' }, log: () => undefined, secrets: [] });
    exit = tool.exit;
    busy(300); // the tool writes all it can meanwhile
    return { stdout: tool.stdout, inspector: head };
  });
  expect((await exit!).exitCode).toBe(0);
  expect(art.execution).toBe(execution);
  expect(art.rawBytes).toBe(expected.bytes);
  const src = await driver.get(art.key);
  return { body: await buffer(src.pipe(decompressStage('zstd')!)), head };
}

describe('a tool that writes before dbs reads', () => {
  const pools: [string, () => PoolDriver][] = [
    ['local pool', () => new LocalDriver(tempDir('pool'))],
    ['S3 pool', () => s3],
  ];
  for (const [pool, driver] of pools) {
    for (const execution of ['node', 'programs', 'file'] as const) {
      for (const guard of ['edges', 'stream'] as const) {
        const runs = !(execution === 'file' && (pool === 'S3 pool' || guard === 'stream'));
        if (!runs) continue;
        it(`loses no byte: ${pool}, execution ${execution}, guard mode ${guard}`, async () => {
          const { body, head } = await storeBusy(driver(), execution, guard);
          // booleans, not toEqual: a failure must not print 15 MB
          expect(body.length).toBe(expected.bytes);
          expect(createHash('sha256').update(body).digest('hex')).toBe(expected.sha256);
          expect(head.head.slice(0, 20)).toBe(expected.head);
          expect(head.edges).toBe(guard === 'edges');
        });
      }
    }
  }

  it('an execution that cannot run is refused before the tool starts, naming why', async () => {
    for (const [driver, execution, guard, why] of [
      [s3, 'file', 'edges', /does not take files written by a program/],
      [new LocalDriver(tempDir('pool')), 'file', 'stream', /reads the whole stream/],
    ] as const) {
      let spawned = false;
      const sink = sinkFor(driver, execution);
      await expect(
        sink.writeTool('out', { extension: '.txt', guard }, () => {
          spawned = true;
          return { stdout: null };
        }),
      ).rejects.toMatchObject({ code: 'INVALID_CONFIG', message: expect.stringMatching(why) });
      expect(spawned).toBe(false);
    }
  });
});
