// What the pool holds and what the catalog says (issue 12): a backup exists when, and only
// when, its manifest is in its pool. Adoption of a backup whose process died between the
// manifest and the catalog row; garbage, disagreeing and missing manifests; an offline pool is
// exit 6, not "damaged"; stale multipart uploads are swept by every entry point. Real S3.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand } from '@aws-sdk/client-s3';
// The catalog's SQLite (node:sqlite): a second SQLite library must not open a file dbs has open
// in this process (src/store/sqlite.ts).
import { Db as Database } from '../../src/store/sqlite.js';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { dbs, type CliResult } from '../support/cli.js';
import { s3Client, servers, tempDir, testbed } from '../support/testbed.js';

beforeAll(() => servers('s3'));

const tag = randomBytes(3).toString('hex');
let home: string;
let poolDir: string;
let srcDb: string;
const env = () => ({ S3_SECRET: testbed().s3.secretKey });
const run = (args: string[]): Promise<CliResult> => dbs(args, { home, env: env() });

function catalogDb(): Database {
  return new Database(join(home, 'catalog.db'));
}

/** A pid that is certainly dead now. */
async function deadPid(): Promise<number> {
  const p = execa('true');
  await p;
  return p.pid!;
}

async function backupNow(plan: string): Promise<{ id: string; taskId: string; manifest: { artifacts: Array<{ key: string }> }; planId: string }> {
  const r = await run(['--json', 'plan', 'run', plan]);
  expect(r.code, r.stderr).toBe(0);
  return r.json().backup;
}

beforeAll(async () => {
  home = tempDir('home');
  poolDir = tempDir('pool');
  srcDb = join(tempDir('src'), 'app.db');
  const d = new Database(srcDb);
  d.exec("CREATE TABLE t (x); INSERT INTO t SELECT value FROM json_each('[1,2,3,4,5]')");
  d.close();
  expect((await run(['pool', 'bind', 'local', '--type', 'local', '--path', poolDir])).code).toBe(0);
  const s3 = testbed().s3;
  const b = await run(['pool', 'bind', 's3', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', `drift-${tag}`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET']);
  expect(b.code, b.stderr).toBe(0);
  expect((await run(['plan', 'create', 'app', '--source', `sqlite://${srcDb}`, '--pool', 'local'])).code).toBe(0);
  expect((await run(['plan', 'create', 'app-s3', '--source', `sqlite://${srcDb}`, '--pool', 's3'])).code).toBe(0);
}, 120_000);

describe('a backup whose process died between its manifest and its catalog row', () => {
  it('is adopted by the next `plan run --due` (all artifacts there) and restores', async () => {
    const b = await backupNow('app');
    // The state a kill -9 right after the manifest write leaves: no catalog row, the task running
    // under a pid that is gone.
    const db = catalogDb();
    db.prepare('DELETE FROM backups WHERE id = ?').run(b.id);
    db.prepare("UPDATE tasks SET status = 'running', ended_at = NULL, backup_id = NULL, pid = ?, host = ? WHERE id = ?").run(await deadPid(), hostname(), b.taskId);
    db.close();
    expect((await run(['--json', 'backup', 'list', '--plan', 'app'])).json().map((x: { id: string }) => x.id)).not.toContain(b.id);

    const due = await run(['plan', 'run', '--due']);
    expect(due.code, due.stderr).toBe(0);
    const list = (await run(['--json', 'backup', 'list', '--plan', 'app'])).json();
    expect(list.map((x: { id: string }) => x.id)).toContain(b.id);
    const task = (await run(['--json', 'task', 'show', b.taskId])).json();
    expect(task).toMatchObject({ status: 'succeeded', backupId: b.id });
    const ev = (await run(['--json', 'events'])).json();
    expect(JSON.stringify(ev)).toContain('backup.adopted');
    const target = join(tempDir('restore'), 'a.db');
    const rs = await run(['backup', 'restore', b.id, '--to', `sqlite://${target}`]);
    expect(rs.code, rs.stderr).toBe(0);
    expect(new Database(target, { readonly: true }).prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 5 });
  });

  it('without its manifest, what it left is removed, and it never appears', async () => {
    const b = await backupNow('app');
    const db = catalogDb();
    db.prepare('DELETE FROM backups WHERE id = ?').run(b.id);
    db.prepare("UPDATE tasks SET status = 'running', ended_at = NULL, backup_id = NULL, pid = ?, host = ? WHERE id = ?").run(await deadPid(), hostname(), b.taskId);
    db.close();
    const dir = join(poolDir, 'dbs', 'backups', b.planId, b.id);
    rmSync(join(dir, 'manifest.json'));
    expect(existsSync(join(poolDir, b.manifest.artifacts[0].key))).toBe(true);
    expect((await run(['plan', 'run', '--due'])).code).toBe(0);
    expect(existsSync(join(poolDir, b.manifest.artifacts[0].key))).toBe(false);
    expect((await run(['--json', 'backup', 'list'])).json().map((x: { id: string }) => x.id)).not.toContain(b.id);
    expect((await run(['--json', 'task', 'show', b.taskId])).json().status).toBe('interrupted');
  });
});

describe('a backup exists when, and only when, its manifest does', () => {
  it('a manifest replaced by garbage, or one that disagrees, fails verify and restore', async () => {
    const b = await backupNow('app');
    const mpath = join(poolDir, 'dbs', 'backups', b.planId, b.id, 'manifest.json');
    const good = readFileSync(mpath, 'utf8');
    const target = join(tempDir('restore'), 'g.db');
    for (const bad of ['garbage, not JSON', good.replace(/"sha256": "[0-9a-f]{4}/, '"sha256": "0000')]) {
      writeFileSync(mpath, bad);
      const v = await run(['--json', 'backup', 'verify', b.id]);
      expect(v.code).toBe(1);
      expect(v.json().ok).toBe(false);
      expect(JSON.stringify(v.json().artifacts)).toMatch(/not JSON|disagrees with the catalog/);
      const rs = await run(['backup', 'restore', b.id, '--to', `sqlite://${target}`]);
      expect(rs.code, rs.stderr).toBe(1);
      expect(rs.stderr).toMatch(/damaged.*nothing was restored/);
      expect(existsSync(target)).toBe(false);
    }
    writeFileSync(mpath, good);
    expect((await run(['backup', 'verify', b.id])).code).toBe(0);
  });

  it('a deleted manifest: verify says so, the backup lists as missing, restore is refused (exit 3); back again once it returns', async () => {
    const b = await backupNow('app');
    const mpath = join(poolDir, 'dbs', 'backups', b.planId, b.id, 'manifest.json');
    const good = readFileSync(mpath, 'utf8');
    rmSync(mpath);
    const v = await run(['--json', 'backup', 'verify', b.id]);
    expect(v.code).toBe(1);
    expect(JSON.stringify(v.json())).toMatch(/manifest .* is missing from the pool/);
    const row = (await run(['--json', 'backup', 'list'])).json().find((x: { id: string }) => x.id === b.id);
    expect(row.status).toBe('missing');
    expect((await run(['backup', 'list'])).stdout).toMatch(new RegExp(`${b.id}.*missing`));
    expect((await run(['--json', 'backup', 'show', b.id])).json().status).toBe('missing');
    const target = join(tempDir('restore'), 'm.db');
    const rs = await run(['--json', 'backup', 'restore', b.id, '--to', `sqlite://${target}`]);
    expect(rs.code).toBe(3);
    expect(rs.stderr).toMatch(/BACKUP_MISSING/);
    expect(existsSync(target)).toBe(false);
    writeFileSync(mpath, good);
    expect((await run(['backup', 'verify', b.id])).code).toBe(0);
    expect((await run(['--json', 'backup', 'show', b.id])).json().status).toBe('available');
  });

  it('pool check marks the backups whose manifest is gone as missing', async () => {
    const b = await backupNow('app');
    const mpath = join(poolDir, 'dbs', 'backups', b.planId, b.id, 'manifest.json');
    const good = readFileSync(mpath, 'utf8');
    rmSync(mpath);
    const c = await run(['--json', 'pool', 'check', 'local']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.json().missingBackups).toContain(b.id);
    expect((await run(['--json', 'backup', 'show', b.id])).json().status).toBe('missing');
    writeFileSync(mpath, good);
    expect((await run(['--json', 'pool', 'check', 'local'])).json().missingBackups).not.toContain(b.id);
    expect((await run(['--json', 'backup', 'show', b.id])).json().status).toBe('available');
  });

  it('retention does not count a missing backup as kept', async () => {
    expect((await run(['plan', 'create', 'keep', '--source', `sqlite://${srcDb}`, '--pool', 'local', '--keep-last', '2'])).code).toBe(0);
    const b1 = await backupNow('keep');
    const b2 = await backupNow('keep');
    rmSync(join(poolDir, 'dbs', 'backups', b2.planId, b2.id, 'manifest.json'));
    expect((await run(['pool', 'check', 'local'])).code).toBe(0);
    const b3 = await backupNow('keep');
    const ids = (await run(['--json', 'backup', 'list', '--plan', 'keep'])).json().filter((x: { status: string }) => x.status === 'available').map((x: { id: string }) => x.id);
    // keep-last 2 keeps the two real backups, not the missing one in their place.
    expect(ids.sort()).toEqual([b1.id, b3.id].sort());
  });

  it('an unmounted (moved away) local pool is offline (exit 6) for verify and restore, not damaged', async () => {
    const b = await backupNow('app');
    const away = `${poolDir}.away`;
    renameSync(poolDir, away);
    try {
      const v = await run(['backup', 'verify', b.id]);
      expect(v.code, v.stderr).toBe(6);
      expect(v.stderr).toMatch(/offline/);
      expect(v.stdout).not.toMatch(/DAMAGED/);
      const target = join(tempDir('restore'), 'o.db');
      const rs = await run(['backup', 'restore', b.id, '--to', `sqlite://${target}`]);
      expect(rs.code, rs.stderr).toBe(6);
      expect(existsSync(target)).toBe(false);
      // Nothing was marked missing: an offline pool says nothing about its backups.
      expect((await run(['--json', 'backup', 'show', b.id])).json().status).toBe('available');
    } finally {
      renameSync(away, poolDir);
    }
  });
});

describe('stale multipart uploads of dead tasks are swept by every entry point that touches the pool', () => {
  async function staleUpload(planId: string): Promise<void> {
    const s3 = s3Client(testbed().s3);
    try {
      const Key = `drift-${tag}/dbs/backups/${planId}/b-20200101T000000Z-dead/database.sqlite.zst`;
      const up = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'dbs', Key }));
      await s3.send(new UploadPartCommand({ Bucket: 'dbs', Key, UploadId: up.UploadId, PartNumber: 1, Body: Buffer.alloc(1024, 1) }));
    } finally {
      s3.destroy();
    }
  }
  async function uploads(): Promise<number> {
    const s3 = s3Client(testbed().s3);
    try {
      const r = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'dbs', Prefix: `drift-${tag}/` }));
      return (r.Uploads ?? []).length;
    } finally {
      s3.destroy();
    }
  }

  it('pool check, backup verify and a manual plan run each abort them; an upload of a live task stays', async () => {
    const planId = (await run(['--json', 'plan', 'show', 'app-s3'])).json().id;
    const b = await backupNow('app-s3');
    for (const entry of [['pool', 'check', 's3'], ['backup', 'verify', b.id], ['plan', 'run', 'app-s3']]) {
      await staleUpload(planId);
      expect(await uploads()).toBe(1);
      const r = await run(entry);
      expect(r.code, `${entry.join(' ')}: ${r.stderr}`).toBe(0);
      expect(await uploads(), entry.join(' ')).toBe(0);
    }
    expect(JSON.stringify((await run(['--json', 'events'])).json())).toContain('uploads.aborted');
    // A live process (this test's own pid) holds the plan's lock: its upload is not touched.
    const db = catalogDb();
    const now = new Date().toISOString();
    db.prepare("INSERT INTO locks (name, pid, host, owner, acquired_at, heartbeat_at, expires_at, pid_ns) VALUES (?, ?, ?, 'test', ?, ?, ?, NULL)").run(`plan:${planId}`, process.pid, hostname(), now, now, new Date(Date.now() + 600_000).toISOString());
    db.close();
    await staleUpload(planId);
    expect((await run(['pool', 'check', 's3'])).code).toBe(0);
    expect(await uploads()).toBe(1);
    const db2 = catalogDb();
    db2.prepare('UPDATE locks SET pid = ? WHERE name = ?').run(await deadPid(), `plan:${planId}`);
    db2.close();
    expect((await run(['pool', 'check', 's3'])).code).toBe(0);
    expect(await uploads()).toBe(0);
  });
});
