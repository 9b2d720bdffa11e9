// The data path's promises on every execution (pipeline/plan.ts): a failure anywhere (the
// source, a program of the chain, the engine's guard) leaves nothing at the artifact's key and
// no temp file or multipart upload; a whole stream is stored byte for byte.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PoolSink } from '../../src/core/artifacts.js';
import { spawnStreamingTool } from '../../src/engines/tool-stream.js';
import { DbsError } from '../../src/errors.js';
import type { Execution } from '../../src/pipeline/plan.js';
import { decompressStage } from '../../src/pipeline/stages.js';
import { Secret } from '../../src/secret.js';
import { LocalDriver } from '../../src/storage/local.js';
import { S3Driver } from '../../src/storage/s3.js';
import type { PoolDriver } from '../../src/storage/types.js';
import { generated } from '../support/streams.js';
import { killChildren } from '../support/ports.js';
import { servers, tempDir, testbed } from '../support/testbed.js';

let s3: S3Driver;
beforeAll(async () => {
  await servers('s3');
  const t = testbed().s3;
  s3 = new S3Driver({ endpoint: t.endpoint, region: t.region, bucket: `datapath-${randomBytes(4).toString('hex')}`, prefix: '', pathStyle: true, accessKey: t.accessKey, secretKey: new Secret(t.secretKey) });
  await s3.ensureBucket(true);
});
afterAll(async () => {
  await s3?.close();
});

/** A guard that fails at its end (as a dump guard does on a missing trailer). */
class FailingGuard extends Transform {
  override _transform(c: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    cb(null, c);
  }
  takeEdges(): void {}
  override _flush(cb: TransformCallback): void {
    cb(new DbsError('BACKUP_FAILED', 'the guard refused the stream on purpose'));
  }
}

async function leftovers(driver: PoolDriver, local?: string): Promise<{ objects: number; incomplete: number; files: string[] }> {
  let objects = 0;
  for await (const _ of driver.list('')) objects++;
  let incomplete = 0;
  for await (const _ of driver.listIncomplete('')) incomplete++;
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk(join(d, e.name)) : files.push(e.name));
  };
  if (local) walk(local);
  return { objects, incomplete, files };
}

const cases: [string, Execution][] = [
  ['local', 'node'],
  ['local', 'programs'],
  ['local', 'file'],
  ['s3', 'node'],
  ['s3', 'programs'],
];

describe.each(cases)('data path: %s pool, execution %s', (pool, execution) => {
  const open = () => {
    const dir = pool === 'local' ? tempDir('pool') : undefined;
    const driver: PoolDriver = dir ? new LocalDriver(dir) : s3;
    const prefix = `p${randomBytes(3).toString('hex')}`;
    const sink = new PoolSink({ driver, planId: prefix, backupId: 'b1', compression: 'zstd', execution, signal: new AbortController().signal });
    return { driver, dir, sink, prefix };
  };

  it('stores a stream Node produces byte for byte, and records the execution and stages', async () => {
    const { driver, sink } = open();
    const src = generated(24);
    const art = await sink.write('data', src, { extension: '.bin' });
    expect(art).toMatchObject({ execution, rawBytes: 24 << 20, stages: ['compress:zstd-1', 'sha256'] });
    const stored = await buffer(await driver.get(art.key));
    expect(stored.length).toBe(art.storedBytes);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(art.sha256);
    const raw = await buffer((await driver.get(art.key)).pipe(decompressStage('zstd')!));
    expect(createHash('sha256').update(raw).digest('hex')).toBe(src.digest());
  });

  it('a source that fails midway stores nothing', async () => {
    const { driver, dir, sink, prefix } = open();
    await expect(sink.write('data', generated(24, { failAfterMiB: 9 }), { extension: '.bin' })).rejects.toThrow(/failed on purpose|exit|SIGKILL/);
    const l = await leftovers(driver, dir);
    expect(l.incomplete).toBe(0);
    if (dir) expect(l.files).toEqual([]);
    else for await (const o of driver.list(prefix)) expect.fail(`left ${o.key}`);
  });

  it("a guard that fails at the end stores nothing, and the tool's failure is the error", async () => {
    const { driver, dir, sink, prefix } = open();
    const ac = new AbortController();
    const e = await sink
      .writeTool('out', { extension: '.txt', guard: 'edges' }, (stdout) => {
        const t = spawnStreamingTool('sh', ['-c', 'seq 1 500000'], { stdout, signal: ac.signal, env: { PATH: process.env.PATH ?? '' }, log: () => undefined, secrets: [] });
        return { stdout: t.stdout, inspector: new FailingGuard() };
      })
      .catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'BACKUP_FAILED', message: expect.stringMatching(/on purpose/) });
    const l = await leftovers(driver, dir);
    expect(l.incomplete).toBe(0);
    if (dir) expect(l.files).toEqual([]);
    else for await (const o of driver.list(prefix)) expect.fail(`left ${o.key}`);
  });

  if (execution !== 'node') {
    it('a program of the chain killed midway stores nothing', async () => {
      const { driver, dir, sink, prefix } = open();
      const ac = new AbortController();
      // The compressor of this test: pzstd or zstd, a child of this process.
      const killer = setInterval(() => killChildren(/^p?zstd$/), 50);
      try {
        const e = await sink
          .writeTool('out', { extension: '.txt', guard: 'edges' }, (stdout) => {
            const t = spawnStreamingTool('sh', ['-c', 'seq 1 50000000'], { stdout, signal: ac.signal, env: { PATH: process.env.PATH ?? '' }, log: () => undefined, secrets: [] });
            return { stdout: t.stdout, inspector: new (class extends Transform {
              override _transform(c: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
                cb(null, c);
              }
              takeEdges(): void {}
            })() };
          })
          .catch((x: unknown) => x);
        expect(String(e)).toMatch(/zstd .*failed \(killed by SIGKILL\)/);
      } finally {
        clearInterval(killer);
        ac.abort();
      }
      const l = await leftovers(driver, dir);
      expect(l.incomplete).toBe(0);
      if (dir) expect(l.files).toEqual([]);
      else for await (const o of driver.list(prefix)) expect.fail(`left ${o.key}`);
    });
  }
});
