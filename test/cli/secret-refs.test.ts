// Secrets by reference (--password-from / --secret-key-from env:VAR|file:PATH): the catalog keeps
// the reference, never the value; each run, probe, restore and pool open reads it again.
// Real MariaDB (password rotation between two runs) and Ceph RGW (an S3 pool's key).
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbs } from '../support/cli.js';
import { bucketName, makeBucket } from '../support/buckets.js';
import { smallSqlite } from '../support/fixtures.js';
import { mysqlConn, s3Client, servers, tempDir, testbed } from '../support/testbed.js';

const tag = randomBytes(3).toString('hex');
const USER = `ref_${tag}`;
const DB = `ref_${tag}`;
const PW1 = `first-${randomBytes(8).toString('hex')}`;
const PW2 = `second-${randomBytes(8).toString('hex')}`;
let root: Connection;

beforeAll(async () => {
  await servers('mariadb', 's3');
  root = await mysqlConn(testbed().mariadb);
  await root.query(`CREATE DATABASE \`${DB}\`; CREATE TABLE \`${DB}\`.t (x INT); INSERT INTO \`${DB}\`.t VALUES (1), (2);`);
  await root.query(`CREATE USER '${USER}'@'127.0.0.1' IDENTIFIED BY '${PW1}'; GRANT ALL PRIVILEGES ON *.* TO '${USER}'@'127.0.0.1';`);
});

afterAll(async () => {
  await root?.query(`DROP USER IF EXISTS '${USER}'@'127.0.0.1'; DROP DATABASE IF EXISTS \`${DB}\``);
  await root?.end();
});

const src = () => `mysql://${USER}@127.0.0.1:${testbed().mariadb.port}`;

/** Every byte the catalog keeps on disk (the database and its WAL). */
function catalogBytes(home: string): Buffer {
  return Buffer.concat(readdirSync(home).filter((f) => f.startsWith('catalog.db')).map((f) => readFileSync(join(home, f))));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
}

function secretFile(dir: string, value: string, mode = 0o600): string {
  const f = join(dir, 'db-password');
  writeFileSync(f, `${value}\n`);
  chmodSync(f, mode);
  return f;
}

async function localHome() {
  const home = tempDir('home');
  const pool = tempDir('pool');
  const b = await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', pool], { home });
  expect(b.code, b.stderr).toBe(0);
  return { home, pool };
}

describe('--password-from', () => {
  it('file: rotation between two runs works (file and server changed); the catalog and a catalog backup hold only the reference', async () => {
    const { home, pool } = await localHome();
    const dir = tempDir('secrets');
    const file = secretFile(dir, PW1);
    const c = await dbs(['plan', 'create', 'shop', '--source', src(), '--databases', DB, '--pool', 'p', '--password-from', `file:${file}`], { home });
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).not.toMatch(/readable by group or others/);
    const show = await dbs(['--json', 'plan', 'show', 'shop'], { home });
    expect(show.json().credential).toEqual({ mode: 'reference', from: `file:${file}` });
    expect(show.stdout).not.toContain(PW1);
    const text = (await dbs(['plan', 'show', 'shop'], { home })).stdout;
    expect(text, text).toMatch(/Password: +from file:\S+ \(read at every run\)/);

    const r1 = await dbs(['--json', 'plan', 'run', 'shop'], { home });
    expect(r1.code, r1.stderr).toBe(0);
    // Rotation: the server's password and the file change together; the next run reads the new one.
    await root.query(`ALTER USER '${USER}'@'127.0.0.1' IDENTIFIED BY '${PW2}'`);
    writeFileSync(file, `${PW2}\n`);
    const r2 = await dbs(['--json', 'plan', 'run', 'shop'], { home });
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.json().backup.id).not.toBe(r1.json().backup.id);

    // The file gone: the task fails naming the file, nothing is written.
    const before = filesUnder(pool).length;
    rmSync(file);
    const gone = await dbs(['--json', 'plan', 'run', 'shop'], { home });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(file);
    expect(gone.stderr).toMatch(/SECRET_UNAVAILABLE/);
    expect(filesUnder(pool).length).toBe(before);
    writeFileSync(file, `${PW2}\n`);
    chmodSync(file, 0o600);

    // The catalog never held a value; a catalog backup restored with its key holds the reference only.
    const key = join(dir, 'age.txt');
    await execa('age-keygen', ['-o', key]);
    const recipient = (await execa('age-keygen', ['-y', key])).stdout.trim();
    expect((await dbs(['plan', 'create', 'platform', '--source', 'catalog', '--pool', 'p', '--encrypt-to', recipient], { home })).code).toBe(0);
    const cb = await dbs(['--json', 'plan', 'run', 'platform'], { home });
    expect(cb.code, cb.stderr).toBe(0);
    const out = join(tempDir('cat-restore'), 'catalog.db');
    const rs = await dbs(['backup', 'restore', cb.json().backup.id, '--to', `sqlite://${out}`, '--identity-file', key], { home });
    expect(rs.code, rs.stderr).toBe(0);
    const restored = readFileSync(out);
    expect(restored.includes(Buffer.from(`file:${file}`))).toBe(true);
    for (const bytes of [restored, catalogBytes(home)]) {
      expect(bytes.includes(Buffer.from(PW1))).toBe(false);
      expect(bytes.includes(Buffer.from(PW2))).toBe(false);
    }
    await root.query(`ALTER USER '${USER}'@'127.0.0.1' IDENTIFIED BY '${PW1}'`);
  });

  it('env: a variable missing at run time fails the task naming it and writes no backup; update switches copy <-> reference', async () => {
    const { home, pool } = await localHome();
    const c = await dbs(['plan', 'create', 'shop', '--source', src(), '--databases', DB, '--pool', 'p', '--password-from', 'env:DB_PW'], { home, env: { DB_PW: PW1 } });
    expect(c.code, c.stderr).toBe(0);
    expect(catalogBytes(home).includes(Buffer.from(PW1))).toBe(false);
    expect((await dbs(['plan', 'run', 'shop'], { home, env: { DB_PW: PW1 } })).code).toBe(0);

    const missing = await dbs(['--json', 'plan', 'run', 'shop'], { home });
    expect(missing.code).toBe(1);
    const err = JSON.parse(missing.stderr.trim().split('\n').at(-1)!);
    expect(err).toMatchObject({ type: 'error', code: 'SECRET_UNAVAILABLE', exitCode: 1, message: expect.stringMatching(/environment variable DB_PW, which is not set/) });
    const empty = await dbs(['plan', 'run', 'shop'], { home, env: { DB_PW: '' } });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/DB_PW, which is empty/);
    const list = await dbs(['--json', 'backup', 'list', '--plan', 'shop'], { home });
    expect(list.json()).toHaveLength(1);
    const tasks = (await dbs(['--json', 'task', 'list', '--plan', 'shop'], { home })).json() as { status: string; errorCode?: string }[];
    expect(tasks.filter((t) => t.status === 'failed')).toHaveLength(2);
    expect(filesUnder(pool).filter((f) => f.endsWith('manifest.json'))).toHaveLength(1);

    // To a copy: the value is checked, then kept; the variable is no longer read.
    const toCopy = await dbs(['plan', 'update', 'shop', '--password-env', 'OTHER'], { home, env: { OTHER: PW1 } });
    expect(toCopy.code, toCopy.stderr).toBe(0);
    expect((await dbs(['--json', 'plan', 'show', 'shop'], { home })).json().credential).toEqual({ mode: 'copy' });
    expect((await dbs(['plan', 'run', 'shop'], { home })).code).toBe(0);
    // Back to a reference: the copy is dropped.
    const toRef = await dbs(['plan', 'update', 'shop', '--password-from', 'env:DB_PW'], { home, env: { DB_PW: PW1 } });
    expect(toRef.code, toRef.stderr).toBe(0);
    expect((await dbs(['--json', 'plan', 'show', 'shop'], { home })).json().credential).toEqual({ mode: 'reference', from: 'env:DB_PW' });
    // The dropped copy is zeroed (secure_delete), not left in a free page of the catalog file.
    expect(catalogBytes(home).includes(Buffer.from(PW1))).toBe(false);
    expect((await dbs(['plan', 'run', 'shop'], { home })).code).toBe(1);
    // A reference that cannot be read here does not block an update that does not check the
    // source, nor the update that fixes it; one that checks the source names it.
    expect((await dbs(['plan', 'update', 'shop', '--remark', 'nightly'], { home })).code).toBe(0);
    const recheck = await dbs(['plan', 'update', 'shop', '--databases', DB], { home });
    expect(recheck.code).toBe(1);
    expect(recheck.stderr).toMatch(/DB_PW, which is not set/);
    const fix = await dbs(['plan', 'update', 'shop', '--password-from', 'env:NEW_PW'], { home, env: { NEW_PW: PW1 } });
    expect(fix.code, fix.stderr).toBe(0);

    // Restore takes a reference too (read once, at the restore).
    const copy = `${DB}_r`;
    const rs = await dbs(['backup', 'restore', list.json()[0].id, '--to', src(), '--password-from', 'env:NEW_PW', '--database', `${DB}:${copy}`], { home, env: { NEW_PW: PW1 } });
    expect(rs.code, rs.stderr).toBe(0);
    const [[n]] = (await root.query(`SELECT COUNT(*) AS n FROM \`${copy}\`.t`)) as unknown as [[{ n: number }]];
    expect(Number(n.n)).toBe(2);
    await root.query(`DROP DATABASE \`${copy}\``);
    const unset = await dbs(['backup', 'restore', list.json()[0].id, '--to', src(), '--password-from', 'env:NEW_PW', '--database', `${DB}:${copy}`], { home });
    expect(unset.code).toBe(2);
    expect(unset.stderr).toMatch(/NEW_PW, which is not set/);
  });

  it('bad input: syntax, exclusive with the copying flags, a variable unset at create, misfit flags: exit 2, nothing written', async () => {
    const { home } = await localHome();
    const dir = tempDir('secrets');
    const loose = secretFile(dir, PW1, 0o644);
    const base = ['plan', 'create', 'x', '--source', src(), '--databases', DB, '--pool', 'p'];
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [[...base, '--password-from', 'DB_PW'], {}, /--password-from must be env:VAR or file:PATH/],
      [[...base, '--password-from', 'vault:db'], {}, /--password-from must be env:VAR or file:PATH/],
      [[...base, '--password-from', 'env:1-bad'], {}, /needs the NAME of an environment variable/],
      [[...base, '--password-from', 'file:'], {}, /needs a path/],
      [[...base, '--password-from', 'env:DB_PW', '--password-env', 'DB_PW'], { DB_PW: PW1 }, /--password-from and --password-env are exclusive/],
      [[...base, '--password-from', 'env:DB_PW', '--password-file', loose], { DB_PW: PW1 }, /--password-from and --password-file are exclusive/],
      [[...base, '--password-from', 'env:UNSET_VAR'], {}, /UNSET_VAR, which is not set/],
      [[...base, '--password-from', `file:${join(dir, 'nope')}`], {}, /nope, which cannot be read \(ENOENT\)/],
      [[...base, '--secret-key-from', 'env:DB_PW'], { DB_PW: PW1 }, /--secret-key-from does not apply/],
      [['plan', 'create', 'y', '--source', `sqlite://${smallSqlite()}`, '--pool', 'p', '--password-from', 'env:DB_PW'], { DB_PW: PW1 }, /--password-from does not apply/],
      [['pool', 'bind', 'q', '--type', 'local', '--path', tempDir('q'), '--secret-key-from', 'env:K'], { K: 'k' }, /--secret-key-from applies to pools with credentials/],
      [['pool', 'bind', 'q', '--type', 's3', '--endpoint', 'http://127.0.0.1:9', '--access-key', 'a', '--secret-key-from', 'env:K', '--secret-key-env', 'K'], { K: 'k' }, /exclusive/],
      [['pool', 'bind', 'q', '--type', 's3', '--endpoint', 'http://127.0.0.1:9', '--access-key', 'a', '--secret-key-from', 'bad'], {}, /--secret-key-from must be env:VAR or file:PATH/],
      [['backup', 'restore', 'b-x', '--to', src(), '--password-from', 'nope'], {}, /--password-from must be env:VAR or file:PATH/],
    ];
    for (const [args, env, message] of cases) {
      const r = await dbs(args, { home, env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain(PW1);
    }
    expect((await dbs(['--json', 'plan', 'list'], { home })).json()).toEqual([]);
    expect((await dbs(['--json', 'pool', 'list'], { home })).json()).toHaveLength(1);
    // A file others may read: accepted with a warning (Kubernetes Secret volumes are 0644 by default).
    const w = await dbs([...base, '--password-from', `file:${loose}`], { home });
    expect(w.code, w.stderr).toBe(0);
    expect(w.stderr).toMatch(/readable by group or others \(mode 0644\); make it 0600 or 0400/);
  });
});

describe('--secret-key-from (S3 pool)', () => {
  it('the key is read at each pool open: a changed file is used at once, a missing one fails naming it; the catalog holds only the reference', async () => {
    const s3 = testbed().s3;
    const home = tempDir('home');
    const dir = tempDir('secrets');
    const keyFile = join(dir, 's3-key');
    writeFileSync(keyFile, `${s3.secretKey}\n`, { mode: 0o600 });
    const prefix = `ref-${randomBytes(4).toString('hex')}`;
    const b = await dbs(['pool', 'bind', 's', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', prefix, '--access-key', s3.accessKey, '--secret-key-from', `file:${keyFile}`], { home });
    expect(b.code, b.stderr).toBe(0);
    expect((await dbs(['--json', 'pool', 'show', 's'], { home })).json().secretKey).toEqual({ mode: 'reference', from: `file:${keyFile}` });
    expect((await dbs(['plan', 'create', 'lite', '--source', `sqlite://${smallSqlite()}`, '--pool', 's'], { home })).code).toBe(0);
    const r1 = await dbs(['plan', 'run', 'lite'], { home });
    expect(r1.code, r1.stderr).toBe(0);

    writeFileSync(keyFile, 'not-the-key\n');
    const wrong = await dbs(['plan', 'run', 'lite'], { home });
    expect(wrong.code).toBe(7);
    writeFileSync(keyFile, `${s3.secretKey}\n`);
    expect((await dbs(['plan', 'run', 'lite'], { home })).code).toBe(0);

    rmSync(keyFile);
    const gone = await dbs(['pool', 'check', 's'], { home });
    expect(gone.code).toBe(1);
    expect(gone.stdout).toContain(`S3 secret key of pool s is read from the file ${keyFile}, which cannot be read (ENOENT)`);
    expect(existsSync(keyFile)).toBe(false);
    expect(catalogBytes(home).includes(Buffer.from(s3.secretKey))).toBe(false);

    // Back to a copied key with pool update; the reference is dropped.
    const u = await dbs(['pool', 'update', 's', '--secret-key-env', 'S3_SECRET'], { home, env: { S3_SECRET: s3.secretKey } });
    expect(u.code, u.stderr).toBe(0);
    expect((await dbs(['--json', 'pool', 'show', 's'], { home })).json().secretKey).toEqual({ mode: 'copy' });
    expect((await dbs(['plan', 'run', 'lite'], { home })).code).toBe(0);
  });

  it('an s3 bucket source: --secret-key-from env: read at each run; unset at run time fails naming it', async () => {
    const s3 = testbed().s3;
    const client = s3Client(s3);
    const src = bucketName('ref');
    try {
      await makeBucket(client, src, [{ key: 'a/one.txt', body: Buffer.from('one') }]);
    } finally {
      client.destroy();
    }
    const { home } = await localHome();
    const keys = ['--endpoint', s3.endpoint, '--access-key', s3.accessKey];
    const both = await dbs(['plan', 'create', 'b', '--source', `s3://${src}/a`, '--pool', 'p', ...keys, '--secret-key-from', 'env:S3_SECRET', '--secret-key-env', 'S3_SECRET'], { home, env: { S3_SECRET: s3.secretKey } });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--secret-key-from and --secret-key-env are exclusive/);
    const c = await dbs(['plan', 'create', 'b', '--source', `s3://${src}/a`, '--pool', 'p', ...keys, '--secret-key-from', 'env:S3_SECRET'], { home, env: { S3_SECRET: s3.secretKey } });
    expect(c.code, c.stderr).toBe(0);
    expect((await dbs(['--json', 'plan', 'show', 'b'], { home })).json().credential).toEqual({ mode: 'reference', from: 'env:S3_SECRET' });
    expect((await dbs(['plan', 'run', 'b'], { home, env: { S3_SECRET: s3.secretKey } })).code).toBe(0);
    const unset = await dbs(['plan', 'run', 'b'], { home });
    expect(unset.code).toBe(1);
    expect(unset.stderr).toMatch(/S3 secret key of plan b is read from the environment variable S3_SECRET, which is not set/);
    expect(catalogBytes(home).includes(Buffer.from(s3.secretKey))).toBe(false);
  });
});
