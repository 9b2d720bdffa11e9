// `dbs gateway ...` against the real S3 server of the test bed: bad input changes nothing,
// a second gateway is refused, delete is refused while an S3 pool goes through it, and the
// connections of pool bind and of a backup's upload are observed leaving from the gateway's
// address (127.0.0.2, and ::1 for IPv6) by a TCP proxy that records each peer address.
import { createHash, randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { dbs, type CliResult } from '../support/cli.js';
import { bigSqlite } from '../support/fixtures.js';
import { bucketFacts, bucketName, makeBucket, mixedObjects } from '../support/buckets.js';
import { recordingProxy } from '../support/proxy.js';
import { Redis } from 'ioredis';
import { mysqlConn, s3Client, servers, startRedis, tempDir, testbed } from '../support/testbed.js';

beforeAll(() => servers('s3', 'mariadb'));

const tag = randomBytes(4).toString('hex');

/** Row count and sha256 of every row of the blobs table (bigSqlite), to compare data. */
function rowsDigest(path: string): { rows: number; sha256: string } {
  const db = new Database(path, { readonly: true });
  try {
    const h = createHash('sha256');
    let rows = 0;
    for (const r of db.prepare('SELECT id, b FROM blobs ORDER BY id').iterate() as Iterable<{ id: number; b: Buffer }>) {
      h.update(`${r.id}:`).update(r.b);
      rows++;
    }
    return { rows, sha256: h.digest('hex') };
  } finally {
    db.close();
  }
}

function runner(home: string) {
  const env = { S3_SECRET: testbed().s3.secretKey };
  return (args: string[]): Promise<CliResult> => dbs(args, { home, env });
}

async function bindS3(run: (a: string[]) => Promise<CliResult>, name: string, endpoint = testbed().s3.endpoint): Promise<CliResult> {
  const s3 = testbed().s3;
  return run(['--json', 'pool', 'bind', name, '--type', 's3', '--endpoint', endpoint, '--prefix', `gw-${tag}-${name}`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET']);
}

describe('gateway commands', () => {
  it('refuses a bad RATE and a non-local address with exit 2 and creates nothing', async () => {
    const run = runner(tempDir('home'));
    for (const rate of ['fast', '20MiB/h', '100B/s']) {
      const r = await run(['gateway', 'create', '--ip', '127.0.0.2', '--bandwidth', rate]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--bandwidth ${JSON.stringify(rate)}`);
      expect(r.stderr).toContain('20MiB/s');
    }
    const far = await run(['--json', 'gateway', 'create', '--ip', '198.51.100.7']);
    expect(far.code).toBe(2);
    const err = JSON.parse(far.stderr.trim().split('\n').at(-1)!);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(err.message).toContain('198.51.100.7 is not an address of this host');
    // The error lists this host's addresses.
    expect(err.hint).toContain('127.0.0.1/8 (lo)');
    expect(err.hint).toContain('::1/128 (lo)');
    expect(err.details.localAddresses).toContain('127.0.0.1/8 (lo)');
    const notIp = await run(['gateway', 'create', '--ip', 'gateway.example']);
    expect(notIp.code).toBe(2);
    expect(notIp.stderr).toContain('is not an IP address');
    const show = await run(['gateway', 'show']);
    expect(show.code).toBe(3);
    expect(show.stderr).toContain('there is no gateway');
  });

  it('creates one gateway (IPv4 or IPv6), refuses a second (exit 4), updates and removes the cap', async () => {
    const run = runner(tempDir('home'));
    const c = await run(['--json', 'gateway', 'create', '--ip', '127.0.0.2', '--bandwidth', '20MiB/s']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.json()).toMatchObject({ address: '127.0.0.2', family: 4, bandwidth: 20 * 1024 * 1024, bandwidthText: '20MiB/s', bandwidthShown: '20 MiB/s', pools: [] });
    const second = await run(['gateway', 'create', '--ip', '::1']);
    expect(second.code).toBe(4);
    expect(second.stderr).toContain('a gateway exists already (127.0.0.2)');

    // Bad updates change nothing.
    const badRate = await run(['gateway', 'update', '--bandwidth', '12 parsecs']);
    expect(badRate.code).toBe(2);
    const badIp = await run(['gateway', 'update', '--ip', '203.0.113.9', '--bandwidth', '1MiB/s']);
    expect(badIp.code).toBe(2);
    expect(badIp.stderr).toContain('127.0.0.1/8 (lo)');
    const nothing = await run(['gateway', 'update']);
    expect(nothing.code).toBe(2);
    expect((await run(['--json', 'gateway', 'show'])).json()).toMatchObject({ address: '127.0.0.2', bandwidth: 20 * 1024 * 1024, updatedAt: c.json().updatedAt });

    const v6 = await run(['--json', 'gateway', 'update', '--ip', '[::1]', '--bandwidth', '100Mbit/s']);
    expect(v6.code, v6.stderr).toBe(0);
    expect(v6.json()).toMatchObject({ address: '::1', family: 6, bandwidth: 12_500_000, bandwidthText: '100Mbit/s' });
    const uncapped = await run(['--json', 'gateway', 'update', '--no-bandwidth']);
    expect(uncapped.json()).toMatchObject({ address: '::1', bandwidth: null, bandwidthShown: 'unlimited' });
    const human = await run(['gateway', 'show']);
    expect(human.stdout).toMatch(/Address:\s+::1 \(IPv6\)/);
    expect(human.stdout).toMatch(/Bandwidth:\s+unlimited/);
  });

  it('says which pools go through it, and refuses delete while an S3 pool exists unless --force', async () => {
    const run = runner(tempDir('home'));
    expect((await run(['pool', 'bind', 'disk', '--type', 'local', '--path', tempDir('pool')])).code).toBe(0);
    expect((await run(['gateway', 'create', '--ip', '127.0.0.2'])).code).toBe(0);
    const b = await bindS3(run, 'far');
    expect(b.code, b.stderr).toBe(0);
    const far = b.json().pool.id as string;

    const show = (await run(['--json', 'gateway', 'show'])).json();
    expect(show.pools).toEqual([{ id: far, name: 'far', type: 's3' }]);
    const list = (await run(['--json', 'pool', 'list'])).json() as { name: string; viaGateway: boolean }[];
    expect(Object.fromEntries(list.map((p) => [p.name, p.viaGateway]))).toEqual({ disk: false, far: true });
    expect((await run(['pool', 'list'])).stdout).toContain('GATEWAY');

    const refused = await run(['gateway', 'delete']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain('carries the traffic of 1 pool(s): far');
    expect(refused.stderr).toContain('--force');
    expect((await run(['gateway', 'show'])).code).toBe(0); // still there

    const forced = await run(['gateway', 'delete', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('far now connect from this host\'s default address, without a bandwidth cap');
    expect((await run(['gateway', 'show'])).code).toBe(3);
    expect(((await run(['--json', 'pool', 'list'])).json() as { viaGateway: boolean }[]).every((p) => !p.viaGateway)).toBe(true);

    // Without an S3 pool delete needs no --force.
    expect((await run(['gateway', 'create', '--ip', '127.0.0.3'])).code).toBe(0);
    expect((await run(['pool', 'unbind', 'far'])).code).toBe(0);
    expect((await run(['gateway', 'delete'])).code).toBe(0);
  });
});

/**
 * Where the IPv6 proxy listens: another IPv6 address of this host when it has one (fd00::2 on
 * the test machines), so that a connection that ignored the gateway (::1) would come from that
 * address instead and the test would fail; ::1 otherwise.
 */
function otherIpv6(): string {
  const all = Object.values(networkInterfaces()).flatMap((l) => l ?? []);
  return all.find((a) => a.family === 'IPv6' && !a.internal && !a.address.startsWith('fe80'))?.address ?? '::1';
}

describe('egress: S3 connections leave from the gateway address', () => {
  for (const [family, address] of [
    ['IPv4', '127.0.0.2'],
    ['IPv6', '::1'],
  ] as const) {
    it(`${family}: bind, the backup upload and the restore download all come from ${address}`, async () => {
      const s3 = new URL(testbed().s3.endpoint);
      // The proxy listens where the pool's endpoint points (::1 for IPv6) and records peers.
      const proxy = await recordingProxy(family === 'IPv6' ? otherIpv6() : '127.0.0.1', { host: s3.hostname, port: Number(s3.port) });
      try {
        const home = tempDir('home');
        const run = runner(home);
        expect((await run(['gateway', 'create', '--ip', address])).code).toBe(0);
        const b = await bindS3(run, 's3', proxy.endpoint);
        expect(b.code, b.stderr).toBe(0);
        const afterBind = proxy.peers.length;
        expect(afterBind).toBeGreaterThan(0);

        const src = bigSqlite(12); // > one 8 MiB part: a multipart upload
        expect((await run(['plan', 'create', 'big', '--source', `sqlite://${src}`, '--pool', 's3'])).code).toBe(0);
        const r = await run(['--json', 'plan', 'run', 'big']);
        expect(r.code, r.stderr).toBe(0);
        expect(proxy.upBytes).toBeGreaterThan(12 * 1024 * 1024);
        const out = `${tempDir('out')}/back.db`;
        const restore = await run(['backup', 'restore', r.json().backup.id, '--to', `sqlite://${out}`]);
        expect(restore.code, restore.stderr).toBe(0);
        expect(rowsDigest(out)).toEqual(rowsDigest(src));

        expect(proxy.peers.length).toBeGreaterThan(afterBind);
        expect(new Set(proxy.peers)).toEqual(new Set([address]));
      } finally {
        await proxy.close();
      }
    }, 120_000);
  }

  it('without a gateway the same pools connect from the default address', async () => {
    const s3 = new URL(testbed().s3.endpoint);
    for (const listen of ['127.0.0.1', otherIpv6()]) {
      const proxy = await recordingProxy(listen, { host: s3.hostname, port: Number(s3.port) });
      try {
        const run = runner(tempDir('home'));
        expect((await bindS3(run, 's3', proxy.endpoint)).code).toBe(0);
        expect(new Set(proxy.peers)).toEqual(new Set([listen]));
      } finally {
        await proxy.close();
      }
    }
  });

  it('a gateway address of the other family than the endpoint: pool check says so', async () => {
    const run = runner(tempDir('home'));
    expect((await bindS3(run, 's3')).code).toBe(0);
    expect((await run(['gateway', 'create', '--ip', '::1'])).code).toBe(0);
    const check = await run(['--json', 'pool', 'check', 's3']);
    expect(check.code).toBe(6);
    expect(check.json().error.message).toContain('from the gateway address ::1');
  }, 60_000);

  it('a capped backup takes the cap\'s time, and the task shows the capped rate', async () => {
    const run = runner(tempDir('home'));
    expect((await bindS3(run, 's3')).code).toBe(0);
    expect((await run(['gateway', 'create', '--ip', '127.0.0.2', '--bandwidth', '2MiB/s'])).code).toBe(0);
    const src = bigSqlite(6);
    expect((await run(['plan', 'create', 'capped', '--source', `sqlite://${src}`, '--pool', 's3'])).code).toBe(0);
    const r = await run(['--json', 'plan', 'run', 'capped']);
    expect(r.code, r.stderr).toBe(0);
    const task = (await run(['--json', 'task', 'show', r.json().task.id])).json();
    // ~6 MiB stored at 2 MiB/s (less a burst of 0.5 MiB): about 2.8 s.
    expect(task.storedBytes).toBeGreaterThan(6 * 1024 * 1024);
    expect(task.durationMs).toBeGreaterThan(2500);
    expect(task.storedRate).toBeLessThan(2 * 1024 * 1024 * 1.1);
    expect(task.storedRate).toBeGreaterThan(2 * 1024 * 1024 * 0.75);
    expect((await run(['task', 'show', r.json().task.id])).stdout).toMatch(/Rate:\s+[12](\.\d)? MiB\/s stored/);
  }, 60_000);
});

describe('egress: source connections dbs makes itself', () => {
  it('an s3:// bucket source is listed, read and restored from the gateway address', async () => {
    const s3 = testbed().s3;
    const client = s3Client(s3);
    const src = bucketName(`gws-${tag}`);
    const dst = bucketName(`gwd-${tag}`);
    await makeBucket(client, src, mixedObjects('data'));
    await makeBucket(client, dst);
    const proxy = await recordingProxy('127.0.0.1', { host: new URL(s3.endpoint).hostname, port: Number(new URL(s3.endpoint).port) });
    try {
      const home = tempDir('home');
      const run = runner(home);
      expect((await run(['pool', 'bind', 'local', '--type', 'local', '--path', tempDir('pool')])).code).toBe(0);
      expect((await run(['gateway', 'create', '--ip', '127.0.0.2'])).code).toBe(0);
      const keys = ['--endpoint', proxy.endpoint, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'];
      const c = await run(['plan', 'create', 'b', '--pool', 'local', '--source', `s3://${src}/data`, ...keys]);
      expect(c.code, c.stderr).toBe(0);
      const r = await run(['--json', 'plan', 'run', 'b']);
      expect(r.code, r.stderr).toBe(0);
      const restore = await run(['backup', 'restore', r.json().backup.id, '--to', `s3://${dst}/data`, ...keys]);
      expect(restore.code, restore.stderr).toBe(0);
      expect(proxy.peers.length).toBeGreaterThan(2);
      expect(new Set(proxy.peers)).toEqual(new Set(['127.0.0.2']));
      expect(await bucketFacts(client, dst, 'data/')).toEqual(await bucketFacts(client, src, 'data/'));
    } finally {
      await proxy.close();
      client.destroy();
    }
  });

  it('redis (ioredis): the probe, the logical backup and the restore connect from the gateway address; a snapshot says redis-cli cannot', async () => {
    const [src, dst] = await Promise.all([startRedis(), startRedis()]);
    const toSrc = await recordingProxy('127.0.0.1', { host: '127.0.0.1', port: src.port });
    const toDst = await recordingProxy('127.0.0.1', { host: '127.0.0.1', port: dst.port });
    const digest = async (port: number): Promise<[string, number]> => {
      const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
      try {
        return [String(await c.call('DEBUG', 'DIGEST')), await c.dbsize()];
      } finally {
        c.disconnect();
      }
    };
    try {
      const c = new Redis({ host: '127.0.0.1', port: src.port });
      const p = c.pipeline();
      for (let i = 0; i < 5000; i++) p.set(`k:${i}`, `v${i}`);
      p.hset('h', { a: '1' });
      await p.exec();
      c.disconnect();
      const run = runner(tempDir('home'));
      expect((await run(['pool', 'bind', 'disk', '--type', 'local', '--path', tempDir('pool')])).code).toBe(0);
      expect((await run(['gateway', 'create', '--ip', '127.0.0.2'])).code).toBe(0);
      const srcUrl = new URL(toSrc.endpoint);
      const made = await run(['plan', 'create', 'cache', '--source', `redis://127.0.0.1:${srcUrl.port}`, '--pool', 'disk', '--type', 'logical']);
      expect(made.code, made.stderr).toBe(0);
      const r = await run(['--json', 'plan', 'run', 'cache']);
      expect(r.code, r.stderr).toBe(0);
      const restored = await run(['backup', 'restore', r.json().backup.id, '--to', `redis://127.0.0.1:${new URL(toDst.endpoint).port}`]);
      expect(restored.code, restored.stderr).toBe(0);
      expect(await digest(dst.port)).toEqual(await digest(src.port));
      expect(toSrc.peers.length).toBeGreaterThanOrEqual(2); // the plan's probe, the backup
      expect(toDst.peers.length).toBeGreaterThanOrEqual(1);
      expect(new Set([...toSrc.peers, ...toDst.peers])).toEqual(new Set(['127.0.0.2']));
      // redis-cli --rdb has no bind option: the task log says its connection does not use the gateway.
      expect((await run(['plan', 'create', 'rdb', '--source', `redis://127.0.0.1:${srcUrl.port}`, '--pool', 'disk', '--type', 'snapshot'])).code).toBe(0);
      const snap = await run(['--json', 'plan', 'run', 'rdb']);
      expect(snap.code, snap.stderr).toBe(0);
      const log = await run(['task', 'show', snap.json().task.id]);
      expect(log.stdout).toContain('redis-cli cannot bind to the gateway address 127.0.0.2');
    } finally {
      await Promise.all([toSrc.close(), toDst.close()]);
      await Promise.all([src.stop(), dst.stop()]);
    }
  }, 60_000);

  it('mysql2 connects from the gateway address: a user that exists only @127.0.0.2 works with the gateway, not without', async () => {
    const m = testbed().mariadb;
    const user = `gw_${tag}`;
    const root = await mysqlConn(m);
    try {
      await root.query(`CREATE USER '${user}'@'127.0.0.2'`);
      await root.query(`GRANT ALL PRIVILEGES ON *.* TO '${user}'@'127.0.0.2'`);
      const run = runner(tempDir('home'));
      expect((await run(['pool', 'bind', 'disk', '--type', 'local', '--path', tempDir('pool')])).code).toBe(0);
      const args = ['plan', 'create', 'db', '--source', `mysql://${user}@127.0.0.1:${m.port}`, '--pool', 'disk', '--databases', 'mysql'];
      const without = await run(args);
      expect(without.code).toBe(7);
      expect(without.stderr).toContain('127.0.0.1');
      expect((await run(['gateway', 'create', '--ip', '127.0.0.2'])).code).toBe(0);
      const withGw = await run(args); // the plan's probe connects for real
      expect(withGw.code, withGw.stderr).toBe(0);
    } finally {
      await root.query(`DROP USER IF EXISTS '${user}'@'127.0.0.2'`);
      await root.end();
    }
  }, 60_000);
});
