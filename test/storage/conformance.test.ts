// One conformance suite, run against every pool driver (local and S3 on a real Ceph RGW).
import { randomBytes } from 'node:crypto';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { buffer } from 'node:stream/consumers';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbsError } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';
import { LocalDriver } from '../../src/storage/local.js';
import { S3Driver } from '../../src/storage/s3.js';
import type { PoolDriver } from '../../src/storage/types.js';
import { generated, sha256Of } from '../support/streams.js';
import { s3Client, servers, tempDir, testbed } from '../support/testbed.js';

beforeAll(() => servers('s3'));

interface Harness {
  driver: PoolDriver;
  /** Incomplete uploads as the server itself reports them (not through the driver). */
  serverIncomplete(): Promise<number>;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<DbsError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, `expected ${code}`).toBeInstanceOf(DbsError);
  expect((e as DbsError).code).toBe(code);
  return e as DbsError;
}

function conformance(name: string, make: () => Promise<Harness>) {
  describe(`pool driver conformance: ${name}`, () => {
    let h: Harness;
    let d: PoolDriver;
    beforeAll(async () => {
      h = await make();
      d = h.driver;
    });
    afterAll(async () => {
      await d?.close();
    });

    it('round-trips an empty object', async () => {
      const r = await d.put('t/empty', Buffer.alloc(0));
      expect(r.size).toBe(0);
      expect((await buffer(await d.get('t/empty'))).length).toBe(0);
      expect((await d.stat('t/empty'))?.size).toBe(0);
    });

    it('round-trips a small object', async () => {
      const body = randomBytes(1234);
      await d.put('t/small.bin', body);
      expect((await buffer(await d.get('t/small.bin'))).equals(body)).toBe(true);
      const st = await d.stat('t/small.bin');
      expect(st?.size).toBe(1234);
      expect(st?.modified).toBeInstanceOf(Date);
    });

    it('round-trips a 200 MiB object streamed, with matching sha256', async () => {
      const src = generated(200);
      const r = await d.put('t/large.bin', src);
      expect(r.size).toBe(200 * 1024 * 1024);
      const back = await sha256Of(await d.get('t/large.bin'));
      expect(back.bytes).toBe(200 * 1024 * 1024);
      expect(back.sha256).toBe(src.digest());
      expect(await h.serverIncomplete()).toBe(0);
    });

    it('reads byte ranges', async () => {
      const body = Buffer.from('0123456789abcdefghij');
      await d.put('t/range.txt', body);
      expect((await buffer(await d.get('t/range.txt', { range: { start: 5, end: 9 } }))).toString()).toBe('56789');
      expect((await buffer(await d.get('t/range.txt', { range: { start: 15 } }))).toString()).toBe('fghij');
      expect((await buffer(await d.get('t/range.txt', { range: { start: 0, end: 0 } }))).toString()).toBe('0');
      // A range into the large object, across a part boundary.
      const part = await buffer(await d.get('t/large.bin', { range: { start: 8 * 1024 * 1024 - 2, end: 8 * 1024 * 1024 + 1 } }));
      expect(part.length).toBe(4);
    });

    it('lists more than 1,000 keys, each exactly once, in key order', async () => {
      const keys = Array.from({ length: 1010 }, (_, i) => `many/k${String(i).padStart(5, '0')}`);
      for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => d.put(k, 'x')));
      const seen: string[] = [];
      for await (const o of d.list('many/')) seen.push(o.key);
      expect(seen).toEqual(keys);
      // A prefix that is not a whole segment.
      const partial: string[] = [];
      for await (const o of d.list('many/k0000')) partial.push(o.key);
      expect(partial).toEqual(keys.slice(0, 10));
    });

    it('lists nested keys in lexicographic order', async () => {
      for (const k of ['n/a-b', 'n/a/c', 'n/a0', 'n/b']) await d.put(k, k);
      const seen: string[] = [];
      for await (const o of d.list('n/')) seen.push(o.key);
      expect(seen).toEqual(['n/a-b', 'n/a/c', 'n/a0', 'n/b']);
    });

    it('deletes, and deleting a missing key succeeds', async () => {
      await d.put('t/del', 'x');
      await d.delete('t/del');
      expect(await d.stat('t/del')).toBeUndefined();
      await d.delete('t/del');
      await d.delete('t/never-existed');
    });

    it('maps a missing key to OBJECT_NOT_FOUND (get) and undefined (stat)', async () => {
      await expectCode(d.get('t/missing'), 'OBJECT_NOT_FOUND');
      expect(await d.stat('t/missing')).toBeUndefined();
    });

    it('create-if-absent refuses an existing key', async () => {
      await d.put('t/once', 'first', { ifAbsent: true });
      await expectCode(d.put('t/once', 'second', { ifAbsent: true }), 'ALREADY_EXISTS');
      expect((await buffer(await d.get('t/once'))).toString()).toBe('first');
    });

    it('create-if-absent lets exactly one of two concurrent writers win', async () => {
      const key = `t/race-${randomBytes(4).toString('hex')}`;
      const results = await Promise.allSettled([d.put(key, 'A', { ifAbsent: true }), d.put(key, 'B', { ifAbsent: true })]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const loser = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect((loser.reason as DbsError).code).toBe('ALREADY_EXISTS');
    });

    it('a put whose source fails midway leaves no object and no incomplete upload', async () => {
      await expectPutFails(d.put('t/broken.bin', generated(64, { failAfterMiB: 20 })));
      expect(await d.stat('t/broken.bin')).toBeUndefined();
      const inc = [];
      for await (const u of d.listIncomplete('t/')) inc.push(u);
      expect(inc).toEqual([]);
      expect(await h.serverIncomplete()).toBe(0);
    });

    it('an aborted put leaves no object and no incomplete upload', async () => {
      const ac = new AbortController();
      const src = generated(100);
      let n = 0;
      src.on('data', () => {
        if (++n === 24) ac.abort(new Error('stop'));
      });
      await expect(d.put('t/aborted.bin', src, { signal: ac.signal })).rejects.toBeTruthy();
      expect(await d.stat('t/aborted.bin')).toBeUndefined();
      expect(await h.serverIncomplete()).toBe(0);
    });

    // openFile(): only drivers whose objects are files offer it (local). A child process
    // writes the temp file through its fd, as pzstd does in the backup path.
    it('openFile: a child writes the file; invisible until commit, placed by it; abort leaves nothing', async () => {
      expect(d.capabilities.localFiles).toBe(Boolean(d.openFile)); // the capability says so
      if (!d.openFile) {
        expect(d.type).toBe('s3'); // every file-backed driver must offer it
        return;
      }
      const f = await d.openFile('t/file/one.bin');
      await execa('sh', ['-c', 'head -c 3000000 /dev/zero | tr "\\0" x; printf end'], { stdout: f.fd as never });
      await execa('sh', ['-c', 'printf more'], { stdout: f.fd as never });
      expect(await d.stat('t/file/one.bin')).toBeUndefined();
      const inc = [];
      for await (const u of d.listIncomplete('t/file/')) inc.push(u.key);
      expect(inc).toHaveLength(1);
      expect(inc[0]).toMatch(/^t\/file\/.*one\.bin$/);
      const r = await f.commit();
      expect(r.size).toBe(3_000_007);
      const back = await buffer(await d.get('t/file/one.bin'));
      expect([back.length, back.subarray(-7).toString()]).toEqual([3_000_007, 'endmore']);
      await f.abort(); // after a commit: a no-op, the object stays
      expect((await d.stat('t/file/one.bin'))?.size).toBe(3_000_007);
      const g = await d.openFile('t/file2/two.bin');
      await execa('sh', ['-c', 'printf partial'], { stdout: g.fd as never });
      await g.abort();
      await g.abort();
      expect(await d.stat('t/file2/two.bin')).toBeUndefined();
      expect(await h.serverIncomplete()).toBe(0);
      const left = [];
      for await (const o of d.list('t/file2/')) left.push(o);
      expect(left).toEqual([]);
      await expectCode(d.openFile('t/file/one.bin', { ifAbsent: true }), 'ALREADY_EXISTS');
    });

    it('rejects keys that climb out of the pool', async () => {
      await expectCode(d.put('../escape', 'x'), 'INVALID_ARGUMENT');
      await expectCode(d.put('/abs', 'x'), 'INVALID_ARGUMENT');
    });
  });
}

async function expectPutFails(p: Promise<unknown>): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeTruthy();
  expect(String((e as Error).message)).toMatch(/source failed on purpose/);
}

conformance('local', async () => {
  const root = tempDir('pool');
  const driver = new LocalDriver(root);
  return {
    driver,
    async serverIncomplete() {
      let n = 0;
      for await (const _ of driver.listIncomplete('')) n++;
      return n;
    },
  };
});

conformance('s3 (Ceph RGW)', async () => {
  const s3 = testbed().s3;
  const bucket = `conf-${randomBytes(4).toString('hex')}`;
  const driver = new S3Driver({ endpoint: s3.endpoint, region: s3.region, bucket, prefix: 'pfx', pathStyle: true, accessKey: s3.accessKey, secretKey: new Secret(s3.secretKey) });
  expect(await driver.ensureBucket(true)).toBe('created');
  const raw = s3Client(s3);
  return {
    driver,
    async serverIncomplete() {
      const r = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (r.Uploads ?? []).length;
    },
  };
});

describe('s3 driver errors', () => {
  it('maps wrong credentials to POOL_AUTH and never shows the secret', async () => {
    const s3 = testbed().s3;
    const wrong = 'WRONGsecretVALUEthatMustNotLeak123';
    const d = new S3Driver({ endpoint: s3.endpoint, region: s3.region, bucket: 'dbs', prefix: '', pathStyle: true, accessKey: s3.accessKey, secretKey: new Secret(wrong) });
    const e = await expectCode(d.put('x', 'y'), 'POOL_AUTH');
    expect(JSON.stringify(e.toJSON()) + e.message).not.toContain(wrong);
    await d.close();
  });

  it('maps an unreachable endpoint to POOL_UNREACHABLE', async () => {
    const d = new S3Driver({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', bucket: 'dbs', prefix: '', pathStyle: true, accessKey: 'a', secretKey: new Secret('b') });
    await expectCode(d.stat('x'), 'POOL_UNREACHABLE');
    await d.close();
  });
});
