// The fault-injecting driver wrapper (src/storage/faults.ts) against real pools (a local
// directory and the test S3 server), and through a core use case in-process (ctx.poolWrappers):
// what dbs leaves behind when a pool fails a put midway, stalls, refuses or returns bad bytes.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proveArtifactsWhole } from '../../src/core/artifacts.js';
import { DbsError, isAbort } from '../../src/errors.js';
import { Secret } from '../../src/secret.js';
import { faultWrapper, type Faults } from '../../src/storage/faults.js';
import { LocalDriver } from '../../src/storage/local.js';
import { S3Driver } from '../../src/storage/s3.js';
import type { PoolDriver } from '../../src/storage/types.js';
import { WrappedDriver, wrapDriver } from '../../src/storage/wrap.js';
import { dbs } from '../support/cli.js';
import { smallSqlite } from '../support/fixtures.js';
import { generated } from '../support/streams.js';
import { mysqlConn, s3Client, servers, tempDir, testbed } from '../support/testbed.js';

beforeAll(() => servers('mariadb', 's3'));

const MiB = 1 << 20;

interface Pool {
  raw: PoolDriver;
  /** Incomplete uploads as the server itself reports them (not through the driver). */
  serverIncomplete(): Promise<number>;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

function withFaults(pool: Pool, f: Omit<Faults, 'onFault'>): { d: PoolDriver; fired: string[] } {
  const fired: string[] = [];
  return { d: wrapDriver(pool.raw, [faultWrapper({ ...f, onFault: (w) => fired.push(w) })]), fired };
}

async function until(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function suite(name: string, make: () => Promise<Pool>) {
  describe(`fault wrapper over a ${name} pool`, () => {
    let pool: Pool;
    beforeAll(async () => {
      pool = await make();
    });
    afterAll(async () => {
      await pool?.raw.close();
    });

    it('offers no openFile and says so; forwards everything else', async () => {
      const { d } = withFaults(pool, {});
      expect(d).toBeInstanceOf(WrappedDriver);
      expect(d.openFile).toBeUndefined();
      expect(d.capabilities).toEqual({ ...pool.raw.capabilities, localFiles: false, serverSideCopy: false });
      expect(d.location).toBe(pool.raw.location);
      await d.put('w/plain', 'through');
      expect((await buffer(await d.get('w/plain'))).toString()).toBe('through');
      expect((await d.stat('w/plain'))?.size).toBe(7);
      const keys = [];
      for await (const o of d.list('w/')) keys.push(o.key);
      expect(keys).toEqual(['w/plain']);
      await d.delete('w/plain');
      expect(await pool.raw.stat('w/plain')).toBeUndefined();
    });

    it('a put that fails after N bytes leaves no object and no multipart upload', async () => {
      // 20 MiB: on S3 a multipart upload with a part stored before the failure at 12 MiB.
      const { d, fired } = withFaults(pool, { failPut: { afterBytes: 12 * MiB } });
      const e = await rejection(d.put('f/broken.bin', generated(20)));
      expect(e).toBeInstanceOf(DbsError);
      expect((e as DbsError).code).toBe('IO_ERROR');
      expect((e as DbsError).message).toMatch(/injected fault after 12582912 bytes/);
      expect(fired).toEqual([`put f/broken.bin: failed after ${12 * MiB} bytes`]);
      expect(await pool.raw.stat('f/broken.bin')).toBeUndefined();
      const inc = [];
      for await (const u of pool.raw.listIncomplete('f/')) inc.push(u);
      expect(inc).toEqual([]);
      expect(await pool.serverIncomplete()).toBe(0);
      // A body shorter than N passes.
      await d.put('f/short.bin', randomBytes(1000));
      expect((await pool.raw.stat('f/short.bin'))?.size).toBe(1000);
    });

    it('a stalled put makes no progress and ends when its signal aborts, leaving nothing', async () => {
      const { d, fired } = withFaults(pool, { stall: { method: 'put', afterBytes: 10 * MiB } });
      const ac = new AbortController();
      const put = rejection(d.put('s/stalled.bin', generated(30), { signal: ac.signal }));
      await until('the stall', () => fired.length > 0);
      expect(fired[0]).toMatch(/^put s\/stalled\.bin: stalled after 10485760 bytes$/);
      await new Promise((r) => setTimeout(r, 300));
      const reason = new DbsError('INTERRUPTED', 'stop');
      const t0 = Date.now();
      ac.abort(reason);
      const e = await put;
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(e === reason || isAbort(e)).toBe(true);
      expect(await pool.raw.stat('s/stalled.bin')).toBeUndefined();
      expect(await pool.serverIncomplete()).toBe(0);
    });

    it('a stalled get stops after N bytes and ends when its signal aborts', async () => {
      await pool.raw.put('s/get.bin', randomBytes(3 * MiB));
      const { d, fired } = withFaults(pool, { stall: { method: 'get', afterBytes: 1000 } });
      const ac = new AbortController();
      const stream = await d.get('s/get.bin', { signal: ac.signal });
      let got = 0;
      const read = rejection(
        (async () => {
          for await (const c of stream) got += (c as Buffer).length;
        })(),
      );
      await until('the stall', () => fired.length > 0);
      await new Promise((r) => setTimeout(r, 300));
      expect(got).toBe(1000);
      ac.abort(new DbsError('INTERRUPTED', 'stop'));
      const e = await read;
      expect(isAbort(e)).toBe(true);
      expect(got).toBe(1000);
    });

    it('a corrupted read fails verification (proveArtifactsWhole); the same object unwrapped passes', async () => {
      const body = randomBytes(2 * MiB + 17);
      await pool.raw.put('c/artifact.bin', body);
      const artifact = { name: 'artifact.bin', key: 'c/artifact.bin', rawBytes: body.length, storedBytes: body.length, sha256: createHash('sha256').update(body).digest('hex'), compression: 'none' };
      const signal = new AbortController().signal;
      await proveArtifactsWhole(pool.raw, [artifact], signal);
      const { d, fired } = withFaults(pool, { corrupt: { offset: MiB + 5 } });
      const e = await rejection(proveArtifactsWhole(d, [artifact], signal));
      expect((e as DbsError).code).toBe('VERIFY_FAILED');
      expect((e as DbsError).message).toMatch(/artifact artifact\.bin is damaged: 2097169 bytes with sha256/);
      expect(fired).toEqual([`get c/artifact.bin: flipped the byte at offset ${MiB + 5}`]);
      // The flipped byte is exactly the one asked for, also through a ranged read.
      const back = await buffer(await d.get('c/artifact.bin', { range: { start: MiB, end: MiB + 9 } }));
      expect(back[5]).toBe(body[MiB + 5] ^ 0xff);
      expect(Buffer.concat([back.subarray(0, 5), back.subarray(6)]).equals(Buffer.concat([body.subarray(MiB, MiB + 5), body.subarray(MiB + 6, MiB + 10)]))).toBe(true);
    });

    it('a refused delete surfaces the error and leaves the object; `times` limits it', async () => {
      await pool.raw.put('r/keep.txt', 'x');
      const refusal = new DbsError('PERMISSION_DENIED', 'no deletes today', { hint: 'injected' });
      const { d } = withFaults(pool, { refuse: [{ method: 'delete', error: refusal, times: 1 }] });
      expect(await rejection(d.delete('r/keep.txt'))).toBe(refusal);
      expect((await pool.raw.stat('r/keep.txt'))?.size).toBe(1);
      await d.delete('r/keep.txt');
      expect(await pool.raw.stat('r/keep.txt')).toBeUndefined();
      // list refusals surface on iteration.
      const { d: d2 } = withFaults(pool, { refuse: [{ method: 'list', error: new DbsError('POOL_UNREACHABLE', 'gone'), key: /^r\// }] });
      const listing = (async () => {
        for await (const _ of d2.list('r/')) void _;
      })();
      expect(((await rejection(listing)) as DbsError).code).toBe('POOL_UNREACHABLE');
      for await (const _ of d2.list('f/')) void _; // another prefix is not refused
    });
  });
}

suite('local', async () => {
  const raw = new LocalDriver(tempDir('pool'));
  return {
    raw,
    async serverIncomplete() {
      let n = 0;
      for await (const _ of raw.listIncomplete('')) n++;
      return n;
    },
  };
});

suite('S3 (Ceph RGW)', async () => {
  const s3 = testbed().s3;
  const bucket = `faults-${randomBytes(4).toString('hex')}`;
  const raw = new S3Driver({ endpoint: s3.endpoint, region: s3.region, bucket, prefix: 'pfx', pathStyle: true, accessKey: s3.accessKey, secretKey: new Secret(s3.secretKey) });
  await raw.ensureBucket(true);
  const client = s3Client(s3);
  return {
    raw,
    async serverIncomplete() {
      const r = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (r.Uploads ?? []).length;
    },
  };
});

describe('faults injected into core use cases (ctx.poolWrappers, in-process)', () => {
  it('a backup whose artifact put fails after N bytes fails its task and records no backup; nothing is left in the pool', async () => {
    const home = tempDir('home');
    const dir = tempDir('pool');
    expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', dir], { home })).code).toBe(0);
    const c = await dbs(['plan', 'create', 'app', '--source', `sqlite://${smallSqlite()}`, '--pool', 'p', '--compress', 'none'], { home });
    expect(c.code, c.stderr).toBe(0);
    const fired: string[] = [];
    const poolWrappers = [faultWrapper({ failPut: { afterBytes: 100, key: /\/database\.sqlite/ }, onFault: (w) => fired.push(w) })];
    const r = await dbs(['--json', 'plan', 'run', 'app'], { home, poolWrappers });
    expect(r.code, r.stderr).toBe(1);
    expect(JSON.parse(r.stderr)).toMatchObject({ code: 'IO_ERROR' });
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatch(/^put dbs\/backups\/plan-[0-9a-f]+\/b-[^/]+\/database\.sqlite: failed after 100 bytes$/);
    const tasks = (await dbs(['--json', 'task', 'list'], { home })).json() as { status: string; errorCode: string; backupId: string | null }[];
    expect(tasks).toMatchObject([{ status: 'failed', errorCode: 'IO_ERROR', backupId: null }]);
    expect((await dbs(['--json', 'backup', 'list'], { home })).json()).toEqual([]);
    // No manifest, no artifact, no temp file: only the pool marker and the plan's copy.
    expect(readdirSync(join(dir, 'dbs')).sort()).toEqual(['plans', 'pool.json']);
    // The same plan without the wrapper succeeds.
    const ok = await dbs(['--json', 'plan', 'run', 'app'], { home });
    expect(ok.code, ok.stderr).toBe(0);
    expect((await dbs(['--json', 'backup', 'list'], { home })).json()).toHaveLength(1);
  });
});

describe('a wrapped local pool offers no openFile, so the fast file path cannot bypass its faults', () => {
  it('a MySQL logical dump (pzstd would write the pool file itself) fails through the wrapper and leaves nothing', async () => {
    const tag = randomBytes(3).toString('hex');
    const db = `flt_${tag}`;
    const user = `dbsw_${tag}`;
    const pw = `pw-${randomBytes(8).toString('hex')}`;
    const root = await mysqlConn(testbed().mariadb);
    try {
      await root.query(`CREATE DATABASE \`${db}\``);
      await root.query(`CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${pw}'`);
      await root.query(`GRANT ALL PRIVILEGES ON *.* TO '${user}'@'127.0.0.1'`);
      await root.query(`USE \`${db}\`; CREATE TABLE t (id INT PRIMARY KEY, pad VARCHAR(200)); INSERT INTO t SELECT seq, SHA2(seq, 512) FROM seq_1_to_50000;`);
      const home = tempDir('home');
      const dir = tempDir('pool');
      const env = { DB_PW: pw };
      expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', dir], { home })).code).toBe(0);
      const src = `mysql://${user}@127.0.0.1:${testbed().mariadb.port}`;
      const c = await dbs(['plan', 'create', 'shop', '--source', src, '--password-env', 'DB_PW', '--pool', 'p', '--databases', db], { home, env });
      expect(c.code, c.stderr).toBe(0);
      const fired: string[] = [];
      const poolWrappers = [faultWrapper({ failPut: { afterBytes: 64 * 1024, key: /\/dump\.sql/ }, onFault: (w) => fired.push(w) })];
      const r = await dbs(['--json', 'plan', 'run', 'shop'], { home, env, poolWrappers });
      expect(r.code, r.stderr).toBe(1);
      expect(fired, 'the dump went through put(), where the fault is').toHaveLength(1);
      expect((await dbs(['--json', 'backup', 'list'], { home })).json()).toEqual([]);
      expect(readdirSync(join(dir, 'dbs')).sort()).toEqual(['plans', 'pool.json']);
      const ok = await dbs(['--json', 'plan', 'run', 'shop'], { home, env });
      expect(ok.code, ok.stderr).toBe(0);
    } finally {
      await root.query(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => undefined);
      await root.query(`DROP USER IF EXISTS '${user}'@'127.0.0.1'`).catch(() => undefined);
      await root.end();
    }
  });
});
