// More than one copy (issue 16): replication to replica pools with their own retention, the
// copies the catalog records, restore/verify from a replica, failed copies retried, server-side
// copies between S3 pools. Real pools: local directories and the S3 server.
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
// The catalog's SQLite (node:sqlite): a second SQLite library must not open a file dbs has open
// in this process (src/store/sqlite.ts).
import { Db as Database } from '../../src/store/sqlite.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { tableDigests } from '../../src/core/quickstart.js';
import { DbsError } from '../../src/errors.js';
import { faultWrapper } from '../../src/storage/faults.js';
import type { PoolWrapper } from '../../src/storage/wrap.js';
import { dbs } from '../support/cli.js';
import { s3Client, servers, tempDir, testbed } from '../support/testbed.js';
import { makeTree, treeFacts } from '../roundtrip/fixtures/dir-tree.js';

/** A small SQLite source whose content changes with each call of `change()`. */
function source() {
  const dir = tempDir('src');
  const path = join(dir, 'app.db');
  const db = new Database(path);
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, pad BLOB)');
  db.close();
  let n = 0;
  return {
    path,
    change() {
      const d = new Database(path);
      const ins = d.prepare('INSERT INTO t (v, pad) VALUES (?, randomblob(2000))');
      d.transaction(() => {
        for (let i = 0; i < 200; i++) ins.run(`run ${n} row ${i}`);
      })();
      d.close();
      n++;
      return tableDigests(path);
    },
  };
}

async function ok(args: string[], o: Parameters<typeof dbs>[1]) {
  const r = await dbs(args, o);
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r;
}

/** A fresh catalog with two local pools, main and spare (the standby tests). */
async function mainAndSpare(): Promise<{ home: string; mainDir: string; spareDir: string }> {
  const home = tempDir('home');
  const mainDir = tempDir('main');
  const spareDir = tempDir('spare');
  await ok(['pool', 'bind', 'main', '--type', 'local', '--path', mainDir], { home });
  await ok(['pool', 'bind', 'spare', '--type', 'local', '--path', spareDir], { home });
  return { home, mainDir, spareDir };
}

/** Only pools whose location contains `where` get the faults. */
function faultsAt(where: string, f: Parameters<typeof faultWrapper>[0]): PoolWrapper {
  const w = faultWrapper(f);
  return (d) => (d.location.includes(where) ? w(d) : d);
}

async function s3Manifests(prefix: string): Promise<string[]> {
  const c = s3Client(testbed().s3);
  try {
    const r = await c.send(new ListObjectsV2Command({ Bucket: 'dbs', Prefix: `${prefix}/dbs/backups/` }));
    return (r.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('/manifest.json')).map((k) => k.split('/').at(-2)!).sort();
  } finally {
    c.destroy();
  }
}

describe('replication', () => {
  beforeAll(() => servers('s3'));

  async function setup() {
    const s3 = testbed().s3;
    const home = tempDir('home');
    const localDir = tempDir('local');
    const otherDir = tempDir('other');
    const prefix = `copies-${randomBytes(4).toString('hex')}`;
    const env = { S3_SECRET: s3.secretKey };
    await ok(['pool', 'bind', 'local', '--type', 'local', '--path', localDir], { home });
    await ok(['pool', 'bind', 'other', '--type', 'local', '--path', otherDir], { home });
    await ok(['pool', 'bind', 'remote', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', prefix, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'], { home, env });
    return { home, localDir, otherDir, prefix, s3 };
  }

  it('local keeps 1, the S3 replica keeps 2: after 4 runs the right copies; restore from the replica with the primary gone compares equal', async () => {
    const { home, localDir, prefix } = await setup();
    const src = source();
    await ok(['plan', 'create', 'app', '--source', `sqlite://${src.path}`, '--pool', 'local', '--keep-last', '1', '--replicate-to', 'remote', '--remote-keep-last', '2'], { home });
    const show = (await ok(['--json', 'plan', 'show', 'app'], { home })).json();
    expect(show.replicas).toEqual(['remote']);
    expect(show.remoteRetentionText).toBe('keep-last 2');
    const ids: string[] = [];
    const digests: ReturnType<typeof tableDigests>[] = [];
    for (let i = 0; i < 4; i++) {
      digests.push(src.change());
      const r = (await ok(['--json', 'plan', 'run', 'app'], { home })).json();
      ids.push(r.backup.id);
      expect(r.copies).toMatchObject([{ backup: r.backup.id, pool: 'remote', status: 'ready' }]);
    }
    const [b1, b2, b3, b4] = ids;
    const list = (await ok(['--json', 'backup', 'list', '--plan', 'app'], { home })).json() as { id: string; copies: { pool: string; status: string }[] }[];
    expect(list.map((b) => b.id)).toEqual([b4, b3]);
    expect(list[0].copies.map((c) => `${c.pool}:${c.status}`)).toEqual(['local:ready', 'remote:ready']);
    expect(list[1].copies.map((c) => `${c.pool}:${c.status}`)).toEqual(['remote:ready']);
    // What the pools hold agrees with the catalog.
    expect(await s3Manifests(prefix)).toEqual([b3, b4].sort());
    const planId = show.id as string;
    expect(readdirSync(join(localDir, 'dbs', 'backups', planId)).sort()).toEqual([b4]);
    expect(ids).not.toContain(undefined);
    expect(list.map((b) => b.id)).not.toContain(b1);
    expect(list.map((b) => b.id)).not.toContain(b2);
    // --pool filters by copy.
    expect((await ok(['--json', 'backup', 'list', '--pool', 'local'], { home })).json().map((b: { id: string }) => b.id)).toEqual([b4]);
    expect((await ok(['--json', 'backup', 'list', '--pool', 'remote'], { home })).json().map((b: { id: string }) => b.id)).toEqual([b4, b3]);
    // backup show lists each copy with its status, size and check time.
    const bs = (await ok(['--json', 'backup', 'show', b4], { home })).json();
    expect(bs.copies.map((c: { poolName: string; role: string; status: string }) => [c.poolName, c.role, c.status])).toEqual([
      ['local', 'primary', 'ready'],
      ['remote', 'replica', 'ready'],
    ]);
    expect(bs.copies[1].storedBytes).toBe(bs.storedBytes);
    expect(bs.copies[1].checkedAt).toMatch(/^\d{4}-/);
    const human = await ok(['backup', 'show', b4], { home });
    expect(human.stdout).toMatch(/COPY IN POOL[\s\S]*remote\s+replica\s+ready/);

    // b3 lives only in S3: its restore reads the replica.
    const out3 = join(tempDir('r'), 'b3.db');
    await ok(['backup', 'restore', b3, '--to', `sqlite://${out3}`], { home });
    expect(tableDigests(out3)).toEqual(digests[2]);
    // The primary pool gone (unmounted): b4 falls back to its replica, and says so.
    renameSync(localDir, `${localDir}.away`);
    const out4 = join(tempDir('r'), 'b4.db');
    const r4 = await ok(['backup', 'restore', b4, '--to', `sqlite://${out4}`], { home });
    expect(r4.stderr).toMatch(/pool local is offline.*reading its copy in pool remote/);
    expect(tableDigests(out4)).toEqual(digests[3]);
    const v = await ok(['--json', 'backup', 'verify', b4], { home });
    expect(v.json()).toMatchObject({ ok: true, pool: 'remote' });
    // --from-pool names the copy: the offline primary is exit 6, a pool without a copy exit 3.
    const off = await dbs(['backup', 'verify', b4, '--from-pool', 'local'], { home });
    expect(off.code, off.stderr).toBe(6);
    const none = await dbs(['backup', 'restore', b4, '--to', `sqlite://${join(tempDir('r'), 'x.db')}`, '--from-pool', 'other'], { home });
    expect(none.code, none.stderr).toBe(3);
    expect(none.stderr).toMatch(/has no ready copy in pool other/);
    renameSync(`${localDir}.away`, localDir);
    const fromLocal = join(tempDir('r'), 'b4-local.db');
    await ok(['backup', 'restore', b4, '--to', `sqlite://${fromLocal}`, '--from-pool', 'local'], { home });
    expect(tableDigests(fromLocal)).toEqual(digests[3]);
  });

  it('a failed copy is a failed copy (never a copy), retried by the next run; backup copy by hand', async () => {
    const { home, otherDir } = await setup();
    const src = source();
    src.change();
    await ok(['plan', 'create', 'app', '--source', `sqlite://${src.path}`, '--pool', 'local'], { home });
    // An old backup from before replication: copied by hand only.
    const old = (await ok(['--json', 'plan', 'run', 'app'], { home })).json().backup.id as string;
    await ok(['plan', 'update', 'app', '--replicate-to', 'other'], { home });
    src.change();
    // The replica's writes fail midway: the backup succeeds, its copy fails.
    const broken = faultsAt(otherDir, { failPut: { afterBytes: 1000, key: /\.zst$/ } });
    const r1 = await dbs(['--json', 'plan', 'run', 'app'], { home, poolWrappers: [broken] });
    expect(r1.code, r1.stderr).toBe(0);
    const b1 = r1.json().backup.id as string;
    expect(r1.json().copies).toMatchObject([{ backup: b1, pool: 'other', status: 'failed' }]);
    let show = (await ok(['--json', 'backup', 'show', b1], { home })).json();
    expect(show.copies.map((c: { poolName: string; status: string }) => `${c.poolName}:${c.status}`)).toEqual(['local:ready', 'other:failed']);
    expect(show.copies[1].error).toMatch(/./);
    expect((await ok(['--json', 'backup', 'list', '--pool', 'other'], { home })).json()).toEqual([]);
    expect(existsSync(join(otherDir, 'dbs', 'backups', show.plan.id, b1))).toBe(false);
    // The next run copies its own backup and retries the failed one.
    src.change();
    const r2 = (await ok(['--json', 'plan', 'run', 'app'], { home })).json();
    expect(r2.copies.map((c: { backup: string; status: string }) => `${c.backup}:${c.status}`).sort()).toEqual([`${b1}:ready`, `${r2.backup.id}:ready`].sort());
    show = (await ok(['--json', 'backup', 'show', b1], { home })).json();
    expect(show.copies.map((c: { poolName: string; status: string }) => `${c.poolName}:${c.status}`)).toEqual(['local:ready', 'other:ready']);
    expect((await ok(['--json', 'backup', 'list', '--pool', 'other'], { home })).json().map((b: { id: string }) => b.id)).toEqual([r2.backup.id, b1]);
    // By hand: the old backup, then again (already there).
    const c = (await ok(['--json', 'backup', 'copy', old, '--to', 'other'], { home })).json();
    expect(c).toMatchObject({ backup: old, pool: 'other', status: 'ready', method: 'stream', from: 'local' });
    expect((await ok(['--json', 'backup', 'copy', old, '--to', 'other'], { home })).json()).toMatchObject({ already: true });
    const v = await ok(['--json', 'backup', 'verify', old, '--from-pool', 'other'], { home });
    expect(v.json()).toMatchObject({ ok: true, pool: 'other' });
    // A copy that cannot be made by hand is exit 1 and a failed copy row.
    const bad = await dbs(['backup', 'copy', r2.backup.id, '--to', 'remote'], { home, poolWrappers: [faultsAt('s3://', { refuse: [{ method: 'put', error: new DbsError('IO_ERROR', 'injected') }] })] });
    expect(bad.code, bad.stderr).toBe(1);
    expect(bad.stderr).toMatch(/copy of backup .* to pool remote failed/);
    show = (await ok(['--json', 'backup', 'show', r2.backup.id], { home })).json();
    expect(show.copies.map((x: { poolName: string; status: string }) => `${x.poolName}:${x.status}`)).toEqual(['local:ready', 'other:ready', 'remote:failed']);
    // Deleting the backup deletes every copy.
    await ok(['backup', 'delete', old], { home });
    expect(existsSync(join(otherDir, 'dbs', 'backups', show.plan.id, old))).toBe(false);
    // pool unbind: refused while a plan replicates there, then while the catalog knows copies there.
    const u1 = await dbs(['pool', 'unbind', 'other'], { home });
    expect(u1.code, u1.stderr).toBe(4);
    expect(u1.stderr).toMatch(/is a replica pool of app/);
    await ok(['plan', 'update', 'app', '--no-replicate'], { home });
    const u2 = await dbs(['pool', 'unbind', 'other'], { home });
    expect(u2.code, u2.stderr).toBe(4);
    expect(u2.stderr).toMatch(/the catalog knows 2 backup copies in pool "other"[\s\S]*--forget-backups/);
    expect((await ok(['--json', 'pool', 'list'], { home })).json().map((p: { name: string }) => p.name)).toContain('other');
    await ok(['pool', 'unbind', 'other', '--forget-backups'], { home });
    // Their primary copies remain: the backups stay, with one copy each.
    const left = (await ok(['--json', 'backup', 'list', '--plan', 'app'], { home })).json() as { id: string; copies: { pool: string; status: string }[] }[];
    expect(left.map((b) => b.copies.filter((c) => c.status === 'ready').map((c) => c.pool).join(','))).toEqual(left.map(() => 'local'));
    expect(left.flatMap((b) => b.copies.map((c) => c.pool))).not.toContain('other');
    expect(existsSync(join(otherDir, 'dbs', 'backups', show.plan.id, b1, 'manifest.json'))).toBe(true);
  });

  it('a damaged local artifact is never copied: streamed to S3 (multipart) and to a local pool it fails VERIFY, leaving no object, no upload, no file', async () => {
    const { home, localDir, otherDir, prefix } = await setup();
    // An artifact of ~20 MB (incompressible, not compressed): more than two S3 parts.
    const dir = tempDir('big');
    const path = join(dir, 'big.db');
    const db = new Database(path);
    db.exec('CREATE TABLE t (b BLOB)');
    const ins = db.prepare('INSERT INTO t VALUES (randomblob(1048576))');
    for (let i = 0; i < 20; i++) ins.run();
    db.close();
    await ok(['plan', 'create', 'big', '--source', `sqlite://${path}`, '--pool', 'local', '--compress', 'none'], { home });
    const id = (await ok(['--json', 'plan', 'run', 'big'], { home })).json().backup.id as string;
    // A good copy first (the pull path end to end), then flip the artifact's last byte.
    const good = (await ok(['--json', 'backup', 'copy', id, '--to', 'remote'], { home })).json();
    expect(good).toMatchObject({ status: 'ready', method: 'stream', check: 'sha256' });
    const v = await dbs(['backup', 'verify', id, '--from-pool', 'remote'], { home });
    expect(v.code, v.stderr).toBe(0);
    const files: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk(join(d, e.name)) : files.push(join(d, e.name)));
    };
    walk(localDir);
    const { statSync } = await import('node:fs');
    const art = files.filter((f) => f.includes(id)).sort((a, b) => statSync(b).size - statSync(a).size)[0]!;
    expect(statSync(art).size).toBeGreaterThan(20 << 20);
    const { openSync, fstatSync, readSync, writeSync, closeSync } = await import('node:fs');
    const fd = openSync(art, 'r+');
    const last = fstatSync(fd).size - 1;
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, last);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, last);
    closeSync(fd);
    await ok(['pool', 'bind', 'remote2', '--type', 's3', '--endpoint', testbed().s3.endpoint, '--prefix', `${prefix}-2`, '--access-key', testbed().s3.accessKey, '--secret-key-env', 'S3_SECRET'], { home, env: { S3_SECRET: testbed().s3.secretKey } });
    for (const to of ['remote2', 'other']) {
      const r = await dbs(['--json', 'backup', 'copy', id, '--to', to], { home });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/is damaged: \d+ bytes with sha256/);
      const copy = ((await ok(['--json', 'backup', 'show', id], { home })).json().copies as { poolName: string; status: string }[]).find((x) => x.poolName === to)!;
      expect(copy.status).toBe('failed');
    }
    expect(await s3Manifests(`${prefix}-2`)).toEqual([]);
    const c = s3Client(testbed().s3);
    const listed = await c.send(new ListObjectsV2Command({ Bucket: 'dbs', Prefix: `${prefix}-2/dbs/backups/` }));
    expect((listed.Contents ?? []).map((o) => o.Key)).toEqual([]);
    const { ListMultipartUploadsCommand } = await import('@aws-sdk/client-s3');
    const uploads = await c.send(new ListMultipartUploadsCommand({ Bucket: 'dbs', Prefix: `${prefix}-2/` }));
    expect(uploads.Uploads ?? []).toEqual([]);
    const otherFiles: string[] = [];
    const walk2 = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk2(join(d, e.name)) : otherFiles.push(e.name));
    };
    walk2(otherDir);
    expect(otherFiles.filter((f) => f !== 'pool.json')).toEqual([]);
  });

  it('S3 -> S3 on one endpoint copies server side, and the copy verifies', async () => {
    const { home, s3 } = await setup();
    const env = { S3_SECRET: s3.secretKey };
    const prefix2 = `copies2-${randomBytes(4).toString('hex')}`;
    await ok(['pool', 'bind', 'remote2', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', prefix2, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'], { home, env });
    const src = source();
    const d = src.change();
    await ok(['plan', 'create', 'app', '--source', `sqlite://${src.path}`, '--pool', 'remote'], { home });
    const id = (await ok(['--json', 'plan', 'run', 'app'], { home })).json().backup.id as string;
    const c = (await ok(['--json', 'backup', 'copy', id, '--to', 'remote2'], { home })).json();
    // RGW 16 computes no SHA-256 of a copy; it reports the copy with the source's ETag and size.
    expect(c).toMatchObject({ status: 'ready', method: 'server', check: 'server-etag', from: 'remote' });
    expect(await s3Manifests(prefix2)).toEqual([id]);
    // Not read back: the copy's sha256 check time is empty until a verify reads it.
    const copyOf = async () => ((await ok(['--json', 'backup', 'show', id], { home })).json().copies as { poolName: string; checkedAt: string | null; status: string }[]).find((x) => x.poolName === 'remote2')!;
    expect(await copyOf()).toMatchObject({ status: 'ready', checkedAt: null });
    const text = await ok(['backup', 'copy', id, '--to', 'remote2'], { home });
    expect(text.stdout).toMatch(/already has a ready copy/);
    const v = (await ok(['--json', 'backup', 'verify', id, '--from-pool', 'remote2'], { home })).json();
    expect(JSON.stringify(v)).toMatch(/"ok":true/);
    expect((await copyOf()).checkedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const out = join(tempDir('r'), 'x.db');
    await ok(['backup', 'restore', id, '--to', `sqlite://${out}`, '--from-pool', 'remote2'], { home });
    expect(tableDigests(out)).toEqual(d);
    // --read-back: the server-side copy is read back against its sha256, and says so.
    const prefix3 = `copies3-${randomBytes(4).toString('hex')}`;
    await ok(['pool', 'bind', 'remote3', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', prefix3, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'], { home, env });
    const rb = await ok(['backup', 'copy', id, '--to', 'remote3', '--read-back'], { home });
    expect(rb.stdout).toMatch(/server-side copy, sha256 checked\)/);
    expect(((await ok(['--json', 'backup', 'show', id], { home })).json().copies as { poolName: string; checkedAt: string | null }[]).find((x) => x.poolName === 'remote3')!.checkedAt).toMatch(/^\d{4}-/);
  });

  it('bad input: unknown pool, the primary as replica, an offline replica, remote rules without replicas: clear errors, nothing written', async () => {
    const { home, otherDir } = await setup();
    const src = source();
    src.change();
    const create = (extra: string[]) => dbs(['plan', 'create', 'app', '--source', `sqlite://${src.path}`, '--pool', 'local', ...extra], { home });
    const cases: [string[], number, RegExp][] = [
      [['--replicate-to', 'nowhere'], 3, /pool "nowhere" not found/],
      [['--replicate-to', 'local'], 2, /--replicate-to local: pool local is the plan's own pool/],
      [['--replicate-to', 'other', '--replicate-to', 'other'], 2, /names pool other twice/],
      [['--remote-keep-last', '2'], 2, /--remote-keep-\* applies to plans with --replicate-to/],
      [['--replicate-to', 'other', '--remote-keep-forever', '--remote-keep-last', '2'], 2, /--remote-keep-forever cannot be combined/],
    ];
    for (const [extra, code, re] of cases) {
      const r = await create(extra);
      expect(r.code, `${extra.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).toMatch(/hint: /);
    }
    // A replica on an offline pool (its folder unmounted) at create time.
    renameSync(otherDir, `${otherDir}.away`);
    const off = await create(['--replicate-to', 'other']);
    expect(off.code, off.stderr).toBe(6);
    expect(off.stderr).toMatch(/--replicate-to other: the pool does not answer/);
    renameSync(`${otherDir}.away`, otherDir);
    expect((await ok(['--json', 'plan', 'list'], { home })).json()).toEqual([]);
    // Update refuses the same way and changes nothing.
    await ok(['plan', 'create', 'app', '--source', `sqlite://${src.path}`, '--pool', 'local'], { home });
    const before = (await ok(['--json', 'plan', 'show', 'app'], { home })).json();
    const u = await dbs(['plan', 'update', 'app', '--replicate-to', 'local'], { home });
    expect(u.code, u.stderr).toBe(2);
    const after = (await ok(['--json', 'plan', 'show', 'app'], { home })).json();
    expect(after.updatedAt).toBe(before.updatedAt);
    expect(after.replicas).toEqual([]);
    // --no-replicate stops it.
    await ok(['plan', 'update', 'app', '--replicate-to', 'other', '--remote-keep-days', '30'], { home });
    expect((await ok(['--json', 'plan', 'show', 'app'], { home })).json()).toMatchObject({ replicas: ['other'], remoteRetentionText: 'keep-days 30' });
    await ok(['plan', 'update', 'app', '--no-replicate'], { home });
    expect((await ok(['--json', 'plan', 'show', 'app'], { home })).json()).toMatchObject({ replicas: [] });
  });
});

describe('standby pool', () => {
  it('a run with the primary offline lands on the standby (pool.failover), the next one after it returns on the primary; a write failing before any byte fails over too', async () => {
    const { home, mainDir, spareDir } = await mainAndSpare();
    const src = source();
    const same = await dbs(['plan', 'create', 'app', '--source', `sqlite://${src.path}`, '--pool', 'main', '--standby-pool', 'main'], { home });
    expect(same.code, same.stderr).toBe(2);
    expect(same.stderr).toMatch(/--standby-pool main: pool main is the plan's own pool/);
    await ok(['plan', 'create', 'app', '--source', `sqlite://${src.path}`, '--pool', 'main', '--standby-pool', 'spare'], { home });
    const d1 = src.change();
    renameSync(mainDir, `${mainDir}.away`);
    const r1 = await ok(['--json', 'plan', 'run', 'app'], { home });
    const b1 = r1.json().backup;
    expect(b1.poolId).not.toBe(undefined);
    expect(r1.stderr).toMatch(/pool main is offline .*the backup goes to the standby pool spare/);
    expect((await ok(['--json', 'backup', 'show', b1.id], { home })).json().copies.map((c: { poolName: string; role: string }) => `${c.poolName}:${c.role}`)).toEqual(['spare:primary']);
    const ev = (await ok(['--json', 'events'], { home })).json() as { type: string; message: string }[];
    expect(ev.find((e) => e.type === 'pool.failover')?.message).toMatch(/pool main is offline .*goes to the standby pool spare/);
    // One pool offline: the plan is still available.
    expect((await ok(['--json', 'plan', 'show', 'app'], { home })).json()).toMatchObject({ available: true, standbyPool: 'spare' });
    renameSync(`${mainDir}.away`, mainDir);
    src.change();
    const r2 = await ok(['--json', 'plan', 'run', 'app'], { home });
    expect((await ok(['--json', 'backup', 'list', '--pool', 'main'], { home })).json().map((b: { id: string }) => b.id)).toEqual([r2.json().backup.id]);
    expect((await ok(['--json', 'events'], { home })).json().some((e: { type: string }) => e.type === 'pool.failback')).toBe(true);
    // The pool answers its probe but its first write fails: the same backup goes to the standby.
    src.change();
    const dead = faultsAt(mainDir, { refuse: [{ method: 'put', key: /\.zst$/, error: new DbsError('POOL_UNREACHABLE', 'injected: the disk went away') }] });
    const r3 = await ok(['--json', 'plan', 'run', 'app'], { home, poolWrappers: [dead] });
    expect(r3.stderr).toMatch(/injected: the disk went away.*standby pool spare/);
    expect((await ok(['--json', 'backup', 'list', '--pool', 'spare'], { home })).json().map((b: { id: string }) => b.id)).toEqual([r3.json().backup.id, b1.id]);
    expect(existsSync(join(mainDir, 'dbs', 'backups', r3.json().backup.planId, r3.json().backup.id))).toBe(false);
    // The failed-over backup restores from the standby.
    const out = join(tempDir('r'), 'b1.db');
    await ok(['backup', 'restore', b1.id, '--to', `sqlite://${out}`], { home });
    expect(tableDigests(out)).toEqual(d1);
    // Both offline: unavailable, and the run fails saying so.
    renameSync(mainDir, `${mainDir}.away`);
    renameSync(spareDir, `${spareDir}.away`);
    const r4 = await dbs(['plan', 'run', 'app'], { home });
    expect(r4.code, r4.stderr).toBe(6);
    expect(r4.stderr).toMatch(/its pool main and its standby pool spare are both offline/);
    expect((await ok(['--json', 'plan', 'show', 'app'], { home })).json()).toMatchObject({ available: false, unavailableReason: 'pools main and spare offline' });
    renameSync(`${mainDir}.away`, mainDir);
    renameSync(`${spareDir}.away`, spareDir);
  });
});

describe('removing a standby pool', () => {
  it('plan update --no-standby-pool removes it (its backups stay); pool unbind is refused while a plan stands by on it; bad combinations change nothing', async () => {
    const { home, mainDir, spareDir } = await mainAndSpare();
    const src = source();
    src.change();
    await ok(['plan', 'create', 'app', '--source', `sqlite://${src.path}`, '--pool', 'main', '--standby-pool', 'spare'], { home });
    renameSync(mainDir, `${mainDir}.away`);
    const onSpare = (await ok(['--json', 'plan', 'run', 'app'], { home })).json().backup.id as string;
    renameSync(`${mainDir}.away`, mainDir);
    const u = await dbs(['pool', 'unbind', 'spare'], { home });
    expect(u.code, u.stderr).toBe(4);
    expect(u.stderr).toMatch(/pool "spare" is the standby pool of app[\s\S]*hint: .*dbs plan update app --no-standby-pool/);
    const before = (await ok(['--json', 'plan', 'show', 'app'], { home })).json();
    const both = await dbs(['plan', 'update', 'app', '--no-standby-pool', '--standby-pool', 'spare'], { home });
    expect(both.code, both.stderr).toBe(2);
    expect(both.stderr).toMatch(/--no-standby-pool and --standby-pool were both given/);
    const onCreate = await dbs(['plan', 'create', 'x', '--source', `sqlite://${src.path}`, '--pool', 'main', '--no-standby-pool'], { home });
    expect(onCreate.code, onCreate.stderr).toBe(2);
    expect((await ok(['--json', 'plan', 'show', 'app'], { home })).json()).toMatchObject({ standbyPool: 'spare', updatedAt: before.updatedAt });
    await ok(['plan', 'update', 'app', '--no-standby-pool'], { home });
    expect((await ok(['--json', 'plan', 'show', 'app'], { home })).json()).toMatchObject({ standbyPool: null });
    expect((await ok(['plan', 'show', 'app'], { home })).stdout).toMatch(/Standby pool: +-\n/);
    const again = await dbs(['plan', 'update', 'app', '--no-standby-pool'], { home });
    expect(again.code, again.stderr).toBe(2);
    expect(again.stderr).toMatch(/plan "app" has no standby pool/);
    // No standby now: a run with the pool offline fails instead of failing over.
    renameSync(mainDir, `${mainDir}.away`);
    const r = await dbs(['plan', 'run', 'app'], { home });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/pool main .* has lost its marker/);
    expect(r.stderr).not.toMatch(/standby/);
    renameSync(`${mainDir}.away`, mainDir);
    expect(existsSync(join(spareDir, 'dbs', 'backups'))).toBe(true);
    // The backup made there stays, with its copy; unbinding the pool now asks about it, as for any pool.
    expect((await ok(['--json', 'backup', 'list', '--pool', 'spare'], { home })).json().map((b: { id: string }) => b.id)).toEqual([onSpare]);
    const u2 = await dbs(['pool', 'unbind', 'spare'], { home });
    expect(u2.code, u2.stderr).toBe(4);
    expect(u2.stderr).toMatch(/the catalog knows 1 backup copy in pool "spare"/);
  });
});

describe('standby pool and chains', () => {
  it('an incremental whose chain is on the offline pool starts a new full on the standby with --auto-full (and says so), fails without it; the pool back, the chain there goes on', async () => {
    const { home, mainDir, spareDir } = await mainAndSpare();
    const root = join(tempDir('dir-src'), 'tree');
    makeTree(root);
    await ok(['plan', 'create', 'full', '--source', `dir://${root}`, '--pool', 'main'], { home });
    await ok(['plan', 'create', 'inc', '--type', 'incremental', '--base-plan', 'full', '--pool', 'main', '--standby-pool', 'spare', '--auto-full'], { home });
    await ok(['plan', 'create', 'strict', '--type', 'incremental', '--base-plan', 'full', '--pool', 'main', '--standby-pool', 'spare'], { home });
    type B = { id: string; planId: string; poolId: string; parentId: string | null; backupType: string };
    const run = async (plan: string) => {
      const r = await ok(['--json', 'plan', 'run', plan], { home });
      return { b: r.json().backup as B, stderr: r.stderr };
    };
    const pools = (await ok(['--json', 'pool', 'list'], { home })).json() as { id: string; name: string }[];
    const poolId = (name: string) => pools.find((p) => p.name === name)!.id;
    const f1 = (await run('full')).b;
    appendFileSync(join(root, 'data/log.txt'), 'one\n');
    const i1 = (await run('inc')).b;
    expect(i1).toMatchObject({ parentId: f1.id, backupType: 'incremental', poolId: poolId('main') });

    // The pool unmounted. Without --auto-full: a clear error, nothing in the standby.
    renameSync(mainDir, `${mainDir}.away`);
    writeFileSync(join(root, 'etc/app/new.txt'), 'two');
    const strict = await dbs(['plan', 'run', 'strict'], { home });
    expect(strict.code, strict.stderr).toBe(1);
    expect(strict.stderr).toMatch(/pool main is offline .*the backup goes to the standby pool spare/);
    expect(strict.stderr).toMatch(/plan strict: its chain is in pool main, which is offline; chains never span pools and the standby pool spare has no backup to build an incremental on/);
    expect(strict.stderr).toMatch(/hint: set --auto-full/);
    expect(existsSync(join(spareDir, 'dbs', 'backups'))).toBe(false);
    // With --auto-full: a new full backup (a snapshot, no parent) on the standby, and it says so.
    const s1 = await run('inc');
    expect(s1.b).toMatchObject({ parentId: null, backupType: 'snapshot', poolId: poolId('spare') });
    expect(s1.stderr).toMatch(/plan inc: its chain is in pool main, which is offline, and chains never span pools; taking a full backup in pool spare instead \(--auto-full\)/);
    const ev = (await ok(['--json', 'events'], { home })).json() as { type: string; message: string }[];
    expect(ev.find((e) => e.type === 'backup.auto-full')?.message).toMatch(new RegExp(`backup ${s1.b.id} is a full backup in pool spare`));
    // The next run while the pool is still away extends the standby's own chain.
    rmSync(join(root, 'etc/app/empty.txt'));
    const s2 = (await run('inc')).b;
    expect(s2).toMatchObject({ parentId: s1.b.id, backupType: 'incremental', poolId: poolId('spare') });
    const fromSpare = tempDir('out-spare');
    await ok(['backup', 'restore', s2.id, '--to-dir', fromSpare], { home });
    expect(treeFacts(fromSpare)).toEqual(treeFacts(root));
    expect(readdirSync(join(spareDir, 'dbs', 'backups', s2.planId)).sort()).toEqual([s1.b.id, s2.id].sort());

    // The pool back: the next run lands on it again and extends the chain there (F1 <- I1).
    renameSync(`${mainDir}.away`, mainDir);
    appendFileSync(join(root, 'data/log.txt'), 'three\n');
    const back = await run('inc');
    expect(back.b).toMatchObject({ parentId: i1.id, backupType: 'incremental', poolId: poolId('main') });
    const ev2 = (await ok(['--json', 'events'], { home })).json() as { type: string; message: string }[];
    expect(ev2.find((e) => e.type === 'pool.failback')?.message).toMatch(/pool main answers again; backups go to it again \(not to the standby pool spare\)/);
    const fromMain = tempDir('out-main');
    await ok(['backup', 'restore', back.b.id, '--to-dir', fromMain], { home });
    expect(treeFacts(fromMain)).toEqual(treeFacts(root));
    // The strict plan works again too, on the base plan's full in the main pool.
    expect((await run('strict')).b).toMatchObject({ parentId: f1.id, poolId: poolId('main') });
  });
});

describe('deleting while a pool is offline', () => {
  it('retention and backup delete leave a copy whose pool is away "deleting" (backup show says why and who retries), the rest goes; the next prune, run or delete finishes it', async () => {
    const home = tempDir('home');
    const localDir = tempDir('local');
    const otherDir = tempDir('other');
    await ok(['pool', 'bind', 'local', '--type', 'local', '--path', localDir], { home });
    await ok(['pool', 'bind', 'other', '--type', 'local', '--path', otherDir], { home });
    const src = source();
    await ok(['plan', 'create', 'app', '--source', `sqlite://${src.path}`, '--pool', 'local', '--keep-last', '1', '--replicate-to', 'other', '--remote-keep-last', '2'], { home });
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      src.change();
      ids.push((await ok(['--json', 'plan', 'run', 'app'], { home })).json().backup.id);
    }
    const [b1, b2] = ids;
    const planId = (await ok(['--json', 'plan', 'show', 'app'], { home })).json().id as string;
    const inPool = (dir: string) => (existsSync(join(dir, 'dbs', 'backups', planId)) ? readdirSync(join(dir, 'dbs', 'backups', planId)).sort() : []);
    expect(inPool(localDir)).toEqual([b2]);
    expect(inPool(otherDir)).toEqual([b1, b2].sort());
    const copiesOf = async (id: string) => ((await ok(['--json', 'backup', 'show', id], { home })).json().copies as { poolName: string; status: string }[]).map((c) => `${c.poolName}:${c.status}`);

    // The replica's disk unmounted; its retention now keeps 1: b1's copy there cannot go.
    renameSync(otherDir, `${otherDir}.away`);
    await ok(['plan', 'update', 'app', '--remote-keep-last', '1'], { home });
    const pr = await ok(['--json', 'plan', 'prune', 'app'], { home });
    expect(pr.json()).toMatchObject({ deleted: [], pending: [{ id: b1, pool: 'other', error: expect.stringMatching(/pool other .*is offline: its marker dbs\/pool.json is not there/) }] });
    expect(pr.stderr).toMatch(new RegExp(`${b1} in pool other: not deleted .*it stays .*deleting.* and is deleted again by the daemon`));
    // b1's only copy is going: the backup is "deleting", no copy, and cannot be restored.
    const s1 = (await ok(['--json', 'backup', 'show', b1], { home })).json();
    expect(s1.status).toBe('deleting');
    expect(s1.copies).toMatchObject([{ poolName: 'other', status: 'deleting', attempts: 1, error: expect.stringMatching(/is offline: its marker/) }]);
    expect(s1.pendingDeletes).toMatchObject([{ pool: 'other', attempts: 1, retry: expect.stringMatching(/daemon.*next run or prune of plan app.*dbs backup delete/) }]);
    expect((await ok(['backup', 'show', b1], { home })).stdout).toMatch(/the copy in pool other is being deleted: the last attempt .* failed: .*is offline: its marker[\s\S]*It is no copy any more; it is deleted again by the daemon's next pass/);
    const list = (await ok(['--json', 'backup', 'list', '--plan', 'app'], { home })).json() as { id: string; status: string }[];
    expect(list.map((b) => `${b.id}:${b.status}`)).toEqual([`${b2}:available`, `${b1}:deleting`]);
    const restore = await dbs(['backup', 'restore', b1, '--to', `sqlite://${join(tempDir('r'), 'x.db')}`], { home });
    expect(restore.code, restore.stderr).toBe(3);
    expect(restore.stderr).toMatch(/backup .* is being deleted/);
    // backup delete: the local copy goes, the one in the away pool stays "deleting"; exit 1 says so.
    const del = await dbs(['--json', 'backup', 'delete', b2], { home });
    expect(del.code, del.stderr).toBe(1);
    expect(del.stderr).toMatch(/DELETE_PENDING/);
    expect(del.stderr).toMatch(/is not deleted yet: its copy in pool other could not be deleted/);
    expect(inPool(localDir)).toEqual([]);
    expect(await copiesOf(b2)).toEqual(['other:deleting']);
    expect((await ok(['--json', 'backup', 'show', b2], { home })).json().status).toBe('deleting');
    const ev = (await ok(['--json', 'events'], { home })).json() as { type: string; message: string }[];
    expect(ev.filter((e) => e.type === 'copy.delete-failed').length).toBeGreaterThanOrEqual(2);
    // A second attempt while the pool is still away: still pending, attempts counted.
    expect((await dbs(['backup', 'delete', b2], { home })).code).toBe(1);
    expect((await ok(['--json', 'backup', 'show', b2], { home })).json().copies[0].attempts).toBe(2);

    // The pool back: backup delete again finishes b2; the plan's next run finishes b1.
    renameSync(`${otherDir}.away`, otherDir);
    await ok(['backup', 'delete', b2], { home });
    expect(inPool(otherDir)).toEqual([b1]);
    src.change();
    const b3 = (await ok(['--json', 'plan', 'run', 'app'], { home })).json().backup.id as string;
    expect(inPool(otherDir)).toEqual([b3]);
    expect(inPool(localDir)).toEqual([b3]);
    expect((await ok(['--json', 'backup', 'list', '--plan', 'app'], { home })).json().map((b: { id: string }) => b.id)).toEqual([b3]);
    const ev2 = (await ok(['--json', 'events'], { home })).json() as { type: string; message: string }[];
    expect(ev2.find((e) => e.type === 'backup.deleted' && e.message.includes(b1))?.message).toMatch(/its copy in pool other is deleted now \(its last copy: the backup is gone\)/);
  });
});

describe('catalog rebuild', () => {
  beforeAll(() => servers('s3'));

  it('an empty catalog rebuilt from the pools lists every backup (ids, sizes, copies) and restores one; merging twice adds nothing', async () => {
    const s3 = testbed().s3;
    const env = { S3_SECRET: s3.secretKey };
    const home = tempDir('home');
    const diskDir = tempDir('disk');
    const prefix = `rebuild-${randomBytes(4).toString('hex')}`;
    const bindAll = async (h: string) => {
      await ok(['pool', 'bind', 'disk', '--type', 'local', '--path', diskDir], { home: h });
      await ok(['pool', 'bind', 'remote', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', prefix, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'], { home: h, env });
    };
    await bindAll(home);
    const src = source();
    await ok(['plan', 'create', 'app', '--source', `sqlite://${src.path}`, '--pool', 'disk', '--keep-last', '1', '--replicate-to', 'remote', '--remote-keep-last', '3'], { home });
    const digests: ReturnType<typeof tableDigests>[] = [];
    for (let i = 0; i < 3; i++) {
      digests.push(src.change());
      await ok(['plan', 'run', 'app'], { home });
    }
    const view = (x: { id: string; planName: string; storedBytes: number; rawBytes: number; copies: { pool: string; status: string }[] }) => ({ id: x.id, plan: x.planName, raw: x.rawBytes, stored: x.storedBytes, copies: x.copies.map((c) => `${c.pool}:${c.status}`).sort() });
    const original = (await ok(['--json', 'backup', 'list'], { home })).json().map(view);
    expect(original).toHaveLength(3);
    // A new host: a fresh catalog, the same pools.
    const fresh = tempDir('home2');
    const bind = await dbs(['pool', 'bind', 'disk', '--type', 'local', '--path', diskDir], { home: fresh });
    expect(bind.code, bind.stderr).toBe(0);
    expect(bind.stderr).toMatch(/dbs catalog rebuild --pool disk/);
    await ok(['pool', 'bind', 'remote', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', prefix, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'], { home: fresh, env });
    const r = (await ok(['--json', 'catalog', 'rebuild', '--all-pools'], { home: fresh })).json();
    expect(r[0]).toMatchObject({ pool: 'disk', plans: ['app'] });
    const rebuilt = (await ok(['--json', 'backup', 'list'], { home: fresh })).json().map(view);
    expect(rebuilt).toEqual(original);
    const plan = (await ok(['--json', 'plan', 'show', 'app'], { home: fresh })).json();
    expect(plan).toMatchObject({ status: 'paused', pauseReason: 'needs credentials', retentionText: 'keep-last 1', replicas: ['remote'], remoteRetentionText: 'keep-last 3' });
    // Merging again changes nothing.
    const again = (await ok(['--json', 'catalog', 'rebuild', '--all-pools'], { home: fresh })).json();
    expect(again.flatMap((x: { plans: string[]; backups: string[] }) => [...x.plans, ...x.backups])).toEqual([]);
    expect((await ok(['--json', 'backup', 'list'], { home: fresh })).json().map(view)).toEqual(original);
    // The oldest lives only in S3; it restores equal.
    const out = join(tempDir('r'), 'old.db');
    await ok(['backup', 'restore', original[2].id, '--to', `sqlite://${out}`], { home: fresh });
    expect(tableDigests(out)).toEqual(digests[0]);
    // plan update makes it active again.
    await ok(['plan', 'update', 'app', '--remark', 'rebuilt'], { home: fresh });
    expect((await ok(['--json', 'plan', 'show', 'app'], { home: fresh })).json()).toMatchObject({ status: 'active', pauseReason: '' });
    const bad = await dbs(['catalog', 'rebuild'], { home: fresh });
    expect(bad.code).toBe(2);
  });

  it('a manifest written before a kill (no catalog row) is adopted by pool check; a gone manifest is marked missing', async () => {
    const home = tempDir('home');
    const diskDir = tempDir('disk');
    await ok(['pool', 'bind', 'disk', '--type', 'local', '--path', diskDir], { home });
    const src = source();
    const d = src.change();
    await ok(['plan', 'create', 'app', '--source', `sqlite://${src.path}`, '--pool', 'disk'], { home });
    const b = (await ok(['--json', 'plan', 'run', 'app'], { home })).json().backup;
    src.change();
    const b2 = (await ok(['--json', 'plan', 'run', 'app'], { home })).json().backup;
    // As if dbs died between the manifest and the catalog row.
    const db = new Database(join(home, 'catalog.db'));
    db.prepare('DELETE FROM backup_copies WHERE backup_id = ?').run(b.id);
    db.prepare('DELETE FROM backups WHERE id = ?').run(b.id);
    db.close();
    expect((await ok(['--json', 'backup', 'list'], { home })).json().map((x: { id: string }) => x.id)).toEqual([b2.id]);
    const { rmSync } = await import('node:fs');
    rmSync(join(diskDir, 'dbs', 'backups', b2.planId, b2.id, 'manifest.json'));
    const c = (await ok(['--json', 'pool', 'check', 'disk'], { home })).json();
    expect(c).toMatchObject({ status: 'online', adoptedBackups: [b.id], missingBackups: [b2.id] });
    const list = (await ok(['--json', 'backup', 'list'], { home })).json() as { id: string; status: string; storedBytes: number }[];
    expect(list.map((x) => `${x.id}:${x.status}`)).toEqual([`${b2.id}:missing`, `${b.id}:available`]);
    expect(list[1].storedBytes).toBe(b.storedBytes);
    const out = join(tempDir('r'), 'a.db');
    await ok(['backup', 'restore', b.id, '--to', `sqlite://${out}`], { home });
    expect(tableDigests(out)).toEqual(d);
  });
});
