// Restores that cannot hurt (issue 12): every restore and plan option is checked against the
// backup's engine and type before anything connects; a damaged artifact never reaches the
// target; a restore that fails midway (its client connection killed on the server) leaves the
// target as it was, with --replace too. Real MariaDB, Redis and S3 (Ceph RGW).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, truncateSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbs, type CliResult } from '../support/cli.js';
import { startMariaDB, type MariaDBServer } from '../support/mariadb.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { mysqlConn, queryRows, s3Client, servers, tempDir, testbed } from '../support/testbed.js';

beforeAll(() => servers('mariadb', 's3'));

const tag = randomBytes(3).toString('hex');
const DB = `safe_${tag}`;
const USER = `rs_${tag}`;
const PW = `pw-${randomBytes(8).toString('hex')}`;
let root: Connection;
let home: string;
let poolDir: string;
let redis: RedisServer;
let privateDb: MariaDBServer;
let pwFile: string;
const env = () => ({ DB_PW: PW, S3_SECRET: testbed().s3.secretKey });
const run = (args: string[]): Promise<CliResult> => dbs(args, { home, env: env() });
const mysqlUrl = () => `mysql://${USER}@127.0.0.1:${testbed().mariadb.port}`;
const redisUrl = (db = 0) => `redis://127.0.0.1:${redis.port}/${db}`;
const backups: Record<string, { id: string; manifest: { artifacts: Array<{ key: string; name: string }> } }> = {};

async function q<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
  return queryRows<T>(root, sql, params);
}

async function dbFacts(db: string) {
  const tables = await q<{ t: string }>("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name", [db]);
  const out: Record<string, string> = {};
  for (const { t } of tables) {
    const [c] = await q<{ Checksum: string | null }>(`CHECKSUM TABLE \`${db}\`.\`${t}\``);
    const [n] = await q<{ n: number }>(`SELECT COUNT(*) AS n FROM \`${db}\`.\`${t}\``);
    out[t] = `${n.n} rows, checksum ${c.Checksum}`;
  }
  const trig = await q<{ n: string }>('SELECT trigger_name AS n FROM information_schema.triggers WHERE trigger_schema = ? ORDER BY 1', [db]);
  return { tables: out, triggers: trig.map((x) => x.n) };
}

async function dbExists(db: string): Promise<boolean> {
  return (await q('SELECT 1 FROM information_schema.schemata WHERE schema_name = ?', [db])).length > 0;
}

async function restoreCount(): Promise<number> {
  return (await run(['--json', 'restore', 'list'])).json().length;
}

beforeAll(async () => {
  root = await mysqlConn(testbed().mariadb);
  await root.query(`CREATE DATABASE \`${DB}\``);
  await root.query(`CREATE USER '${USER}'@'127.0.0.1' IDENTIFIED BY '${PW}'`);
  await root.query(`GRANT ALL PRIVILEGES ON *.* TO '${USER}'@'127.0.0.1'`);
  await root.query(`USE \`${DB}\``);
  await root.query(`
    CREATE TABLE orders (id BIGINT PRIMARY KEY, total DECIMAL(12,2), note VARCHAR(200));
    INSERT INTO orders SELECT seq, seq * 1.25, REPEAT('x', 150) FROM seq_1_to_400000;
    CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, msg VARCHAR(200));
    INSERT INTO audit (msg) VALUES ('one'), ('two');
    CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW INSERT INTO audit (msg) VALUES (CONCAT('order ', NEW.id));
  `);
  home = tempDir('home');
  poolDir = tempDir('pool');
  pwFile = join(tempDir('pw'), 'pw');
  writeFileSync(pwFile, PW, { mode: 0o600 });
  expect((await run(['pool', 'bind', 'local', '--type', 'local', '--path', poolDir])).code).toBe(0);
  const s3 = testbed().s3;
  const b = await run(['pool', 'bind', 's3', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', `safe-${tag}`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET']);
  expect(b.code, b.stderr).toBe(0);

  redis = await startRedis();
  privateDb = await startMariaDB();
  const { Redis } = await import('ioredis');
  const c = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1 });
  const p = c.pipeline();
  for (let i = 0; i < 20000; i++) p.set(`k:${i}`, `value ${i}`);
  await p.exec();
  c.disconnect();

  const plans: Array<[string, string[]]> = [
    ['mysql-logical', ['--source', mysqlUrl(), '--password-env', 'DB_PW', '--pool', 'local', '--databases', DB]],
    ['mysql-logical-s3', ['--source', mysqlUrl(), '--password-env', 'DB_PW', '--pool', 's3', '--databases', DB]],
    // A private server: a physical backup of the shared one races its redo log against the other test files' writes.
    ['mysql-physical', ['--source', `mysql://root@127.0.0.1:${privateDb.port}`, '--pool', 'local', '--type', 'physical']],
    ['redis-logical', ['--source', redisUrl(), '--pool', 'local', '--type', 'logical']],
    ['redis-snapshot', ['--source', redisUrl(), '--pool', 'local', '--type', 'snapshot']],
  ];
  for (const [name, args] of plans) {
    const c1 = await run(['plan', 'create', name, ...args]);
    expect(c1.code, `${name}: ${c1.stderr}`).toBe(0);
    const r = await run(['--json', 'plan', 'run', name]);
    expect(r.code, `${name}: ${r.stderr}`).toBe(0);
    backups[name] = r.json().backup;
  }
}, 300_000);

afterAll(async () => {
  await root?.end();
  await redis?.stop();
  await privateDb?.stop();
});

describe('restore options are checked against the backup type before anything connects', () => {
  // What each backup type accepts, written down here independently of the engine descriptors.
  const accepts: Record<string, string[]> = {
    'mysql-logical': ['--to', '--database', '--tables', '--replace', '--password-env', '--password-file'],
    'mysql-physical': ['--to-datadir', '--start'],
    'redis-logical': ['--to', '--replace', '--flush', '--password-env', '--password-file'],
    'redis-snapshot': ['--to-dir', '--replace'],
  };
  const flagArgs = (flag: string, plan: string): string[] => {
    switch (flag) {
      case '--to':
        return ['--to', plan.startsWith('redis') ? redisUrl(5) : `mysql://${USER}@127.0.0.1:${testbed().mariadb.port}`];
      case '--to-dir':
      case '--to-datadir':
        return [flag, join(tempDir('target'), 'x')];
      case '--start':
        return ['--start', '--port', '39999'];
      case '--database':
        return ['--database', `${DB}:${DB}_x`];
      case '--tables':
        return ['--tables', `${DB}.audit`];
      case '--password-env':
        return ['--password-env', 'DB_PW'];
      case '--password-file':
        return ['--password-file', pwFile];
      default:
        return [flag];
    }
  };
  const all = ['--to', '--to-dir', '--to-datadir', '--start', '--database', '--tables', '--replace', '--flush', '--password-env', '--password-file'];
  const targetOf: Record<string, string> = { 'mysql-logical': '--to', 'mysql-physical': '--to-datadir', 'redis-logical': '--to', 'redis-snapshot': '--to-dir' };

  for (const plan of Object.keys(accepts)) {
    it(`${plan}: every option that does not apply is a usage error naming it; nothing is recorded or written`, async () => {
      const before = await restoreCount();
      const wrong = all.filter((f) => !accepts[plan].includes(f));
      expect(wrong.length).toBeGreaterThan(0);
      for (const flag of wrong) {
        const base = flag.startsWith('--to') ? [] : flagArgs(targetOf[plan], plan);
        const r = await run(['backup', 'restore', backups[plan].id, ...base, ...flagArgs(flag, plan)]);
        expect(r.code, `${plan} ${flag}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toContain(flag);
        expect(r.stderr).toMatch(/does not apply to restoring a (mysql|redis) (logical|physical|snapshot) backup/);
      }
      // No target at all: refused, never a default server.
      const none = await run(['backup', 'restore', backups[plan].id]);
      expect(none.code).toBe(2);
      expect(none.stderr).toMatch(/say where to restore/);
      expect(await restoreCount()).toBe(before);
      expect(await dbExists(`${DB}_x`)).toBe(false);
    });
  }

  it('--to-datadir on a logical backup fails in a network namespace without any address: it never connects', async () => {
    const dir = join(tempDir('datadir'), 'd');
    const r = await execa('unshare', ['-n', process.execPath, new URL('../../bin/dbs.js', import.meta.url).pathname, '--home', home, 'backup', 'restore', backups['mysql-logical'].id, '--to-datadir', dir], { reject: false, env: { PATH: process.env.PATH } });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/--to-datadir does not apply to restoring a mysql logical backup/);
    expect(r.stderr).toMatch(/--to mysql:\/\/USER@HOST:PORT/);
  });

  it('restoring over the source is refused whatever name the same host goes by (127.0.0.1, localhost, [::1])', async () => {
    const port = testbed().mariadb.port;
    for (const host of ['127.0.0.1', 'localhost', '[::1]', '127.0.0.1']) {
      const r = await run(['backup', 'restore', backups['mysql-logical'].id, '--to', `mysql://${USER}@${host}:${port}`, '--password-env', 'DB_PW']);
      expect(r.code, `${host}: ${r.stderr}`).toBe(4);
      expect(r.stderr).toMatch(/is the source of backup/);
    }
  });

  it('a target path that is a file, and a database name the server cannot take, are usage errors before anything connects', async () => {
    const file = join(tempDir('file'), 'f');
    writeFileSync(file, 'x');
    for (const [plan, flag] of [['redis-snapshot', '--to-dir'], ['mysql-physical', '--to-datadir']]) {
      const r = await run(['backup', 'restore', backups[plan].id, flag, file]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/is not a directory/);
      expect(r.stderr).not.toMatch(/EEXIST|ENOTDIR/);
    }
    const long = 'x'.repeat(10_000);
    const r = await run(['backup', 'restore', backups['mysql-logical'].id, '--to', mysqlUrl(), '--password-env', 'DB_PW', '--database', `${DB}:${long}`]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/not valid \(10000 characters\)/);
    expect(readFileSync(file, 'utf8')).toBe('x');
  });

  it('plan options that do not apply to the source and type are usage errors', async () => {
    const cases: Array<[string[], string]> = [
      [['--source', mysqlUrl(), '--databases', DB, '--match', 'a*'], '--match'],
      [['--source', mysqlUrl(), '--databases', DB, '--auto-full'], '--auto-full'],
      [['--source', mysqlUrl(), '--databases', DB, '--verify-prepare'], '--verify-prepare'],
      [['--source', mysqlUrl(), '--type', 'physical', '--match', 'x'], '--match'],
      [['--source', redisUrl(), '--tables', 'a.b'], '--tables'],
      [['--source', redisUrl(), '--all-databases'], '--all-databases'],
      [['--source', redisUrl(), '--type', 'snapshot', '--match', 'a*'], '--match'],
      [['--source', redisUrl(), '--type', 'snapshot', '--databases', '0'], '--databases'],
      [['--source', 'sqlite:///tmp/x.db', '--databases', 'a'], '--databases'],
      [['--source', 'sqlite:///tmp/x.db', '--password-env', 'DB_PW'], '--password-env'],
    ];
    for (const [args, flag] of cases) {
      const r = await run(['plan', 'create', `bad-${randomBytes(2).toString('hex')}`, '--pool', 'local', ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(flag);
      expect(r.stderr).toMatch(/does not apply/);
    }
    const u = await run(['plan', 'update', 'redis-logical', '--tables', 'a.b']);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/--tables does not apply to a redis logical backup plan/);
    expect((await run(['--json', 'plan', 'list'])).json()).toHaveLength(5);
  });
});

/** Flips bytes in the middle of a file, keeping its size. */
function flip(buf: Buffer): Buffer {
  const out = Buffer.from(buf);
  for (let i = Math.floor(out.length / 2); i < Math.floor(out.length / 2) + 64; i++) out[i] ^= 0xff;
  return out;
}

describe('a damaged artifact never reaches the target', () => {
  it('local pool: flipped bytes and a truncated file fail before anything is written', async () => {
    const b = backups['mysql-logical'];
    const file = join(poolDir, b.manifest.artifacts[0].key);
    const good = readFileSync(file);
    try {
      for (const [how, damage] of [
        ['flipped', () => writeFileSync(file, flip(good))],
        ['truncated', () => truncateSync(file, Math.floor(good.length / 2))],
      ] as const) {
        damage();
        const target = `${DB}_dmg_${how}`;
        const r = await run(['backup', 'restore', b.id, '--to', mysqlUrl(), '--password-env', 'DB_PW', '--database', `${DB}:${target}`]);
        expect(r.code, r.stderr).toBe(1);
        expect(await dbExists(target)).toBe(false);
        expect(r.stderr).toMatch(/damaged; nothing was written/);
        writeFileSync(file, good);
      }
    } finally {
      writeFileSync(file, good);
    }
    expect(statSync(file).size).toBe(good.length);
  });

  it('S3 pool: a corrupted object fails before anything is written', async () => {
    const b = backups['mysql-logical-s3'];
    const s3 = s3Client(testbed().s3);
    const Key = `safe-${tag}/${b.manifest.artifacts[0].key}`;
    try {
      const got = await s3.send(new GetObjectCommand({ Bucket: 'dbs', Key }));
      const good = Buffer.from(await got.Body!.transformToByteArray());
      await s3.send(new PutObjectCommand({ Bucket: 'dbs', Key, Body: flip(good) }));
      const target = `${DB}_dmg_s3`;
      const r = await run(['backup', 'restore', b.id, '--to', mysqlUrl(), '--password-env', 'DB_PW', '--database', `${DB}:${target}`]);
      expect(r.code, r.stderr).toBe(1);
      expect(await dbExists(target)).toBe(false);
      expect(r.stderr).toMatch(/damaged; nothing was written/);
      await s3.send(new PutObjectCommand({ Bucket: 'dbs', Key, Body: good }));
      const ok = await run(['backup', 'restore', b.id, '--to', mysqlUrl(), '--password-env', 'DB_PW', '--database', `${DB}:${target}`]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(await dbFacts(target)).toEqual(await dbFacts(DB));
    } finally {
      s3.destroy();
    }
  });

  it('redis logical: a damaged artifact writes no key', async () => {
    const b = backups['redis-logical'];
    const file = join(poolDir, b.manifest.artifacts[0].key);
    const good = readFileSync(file);
    writeFileSync(file, flip(good));
    try {
      const dst = await startRedis();
      try {
        const r = await run(['backup', 'restore', b.id, '--to', `redis://127.0.0.1:${dst.port}/0`]);
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toMatch(/damaged; nothing was written/);
        const { Redis } = await import('ioredis');
        const c = new Redis({ host: '127.0.0.1', port: dst.port, maxRetriesPerRequest: 1 });
        expect(await c.dbsize()).toBe(0);
        c.disconnect();
      } finally {
        await dst.stop();
      }
    } finally {
      writeFileSync(file, good);
    }
  });
});

/**
 * Runs a restore and kills its client's connection on the server as soon as it is inserting
 * rows: a restore that fails midway with a whole artifact.
 */
async function restoreKilledMidway(args: string[]): Promise<{ r: CliResult; killed: boolean }> {
  let killed = false;
  let done = false;
  const killer = (async () => {
    while (!done && !killed) {
      const p = await q<{ Id: number }>("SELECT ID AS Id FROM information_schema.processlist WHERE user = ? AND info LIKE 'INSERT INTO `orders`%'", [USER]);
      if (p.length > 0) {
        await root.query(`KILL CONNECTION ${p[0].Id}`).catch(() => undefined);
        killed = true;
      } else await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const r = await run(args);
  done = true;
  await killer;
  return { r, killed };
}

describe('a restore that fails midway leaves the target as it was', () => {
  it('into a new database: the database is gone again', async () => {
    const target = `${DB}_mid_new`;
    const { r, killed } = await restoreKilledMidway(['backup', 'restore', backups['mysql-logical'].id, '--to', mysqlUrl(), '--password-env', 'DB_PW', '--database', `${DB}:${target}`]);
    expect(killed).toBe(true);
    expect(r.code).toBe(1);
    expect(await dbExists(target)).toBe(false);
    expect(r.stderr).toMatch(/the target was put back as it was/);
    const rl = (await run(['--json', 'restore', 'list'])).json();
    expect(rl[0]).toMatchObject({ status: 'failed', target: mysqlUrl() });
  });

  it('with --replace over existing data: the previous tables, rows and triggers survive; a later good restore replaces them cleanly', async () => {
    const target = `${DB}_mid_rep`;
    const ok = await run(['backup', 'restore', backups['mysql-logical'].id, '--to', mysqlUrl(), '--password-env', 'DB_PW', '--database', `${DB}:${target}`]);
    expect(ok.code, ok.stderr).toBe(0);
    // The operator's newer data in the target, which a failed restore must not lose.
    await root.query(`DELETE FROM \`${target}\`.orders WHERE id > 300000; UPDATE \`${target}\`.audit SET msg = 'changed'; CREATE TABLE \`${target}\`.extra (a INT); INSERT INTO \`${target}\`.extra VALUES (7)`);
    const before = await dbFacts(target);
    expect(before.triggers).toEqual(['orders_audit']);
    const { r, killed } = await restoreKilledMidway(['backup', 'restore', backups['mysql-logical'].id, '--to', mysqlUrl(), '--password-env', 'DB_PW', '--database', `${DB}:${target}`, '--replace']);
    expect(killed).toBe(true);
    expect(r.code).toBe(1);
    expect(await dbFacts(target)).toEqual(before);
    expect(r.stderr).toMatch(/the target was put back as it was/);

    const again = await run(['backup', 'restore', backups['mysql-logical'].id, '--to', mysqlUrl(), '--password-env', 'DB_PW', '--database', `${DB}:${target}`, '--replace']);
    expect(again.code, again.stderr).toBe(0);
    const after = await dbFacts(target);
    const src = await dbFacts(DB);
    // Equal to the source, plus the table the backup does not hold (untouched), no leftovers.
    expect(after.triggers).toEqual(src.triggers);
    expect(after.tables).toEqual({ ...src.tables, extra: before.tables.extra });
  });
});

describe('a Redis restore that fails midway leaves the target as it was', () => {
  /** Runs a restore and kills its connection (CLIENT KILL) once it is sending RESTOREs. */
  async function killedMidway(port: number, args: string[]): Promise<{ r: CliResult; killed: boolean }> {
    const { Redis } = await import('ioredis');
    const admin = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
    let killed = false;
    let done = false;
    const killer = (async () => {
      while (!done && !killed) {
        const list = String(await admin.call('CLIENT', 'LIST'));
        const line = list.split('\n').find((l) => / name=dbs-restore /.test(l) && /cmd=restore\b/.test(l));
        const id = line && /\bid=(\d+)/.exec(line)?.[1];
        if (id) {
          await admin.call('CLIENT', 'KILL', 'ID', id);
          killed = true;
        } else await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const r = await run(args);
    done = true;
    await killer;
    admin.disconnect();
    return { r, killed };
  }

  async function state(port: number, db: number) {
    const { Redis } = await import('ioredis');
    const c = new Redis({ host: '127.0.0.1', port, db, maxRetriesPerRequest: 1 });
    try {
      return { digest: String(await c.call('DEBUG', 'DIGEST')), size: await c.dbsize(), ttl: await c.pexpiretime('keep:ttl') };
    } finally {
      c.disconnect();
    }
  }

  for (const mode of ['--replace', '--flush', 'none'] as const) {
    it(`${mode === 'none' ? 'into an empty database' : mode}: the previous keys, values and TTLs survive`, async () => {
      const dst = await startRedis();
      try {
        const { Redis } = await import('ioredis');
        const c = new Redis({ host: '127.0.0.1', port: dst.port, maxRetriesPerRequest: 1 });
        if (mode !== 'none') {
          const p = c.pipeline();
          for (let i = 0; i < 5000; i++) p.set(`k:${i}`, `old ${i}`);
          for (let i = 0; i < 500; i++) p.set(`keep:${i}`, `mine ${i}`);
          p.set('keep:ttl', 'x', 'EX', 7200);
          await p.exec();
        }
        c.disconnect();
        const before = await state(dst.port, 0);
        const { r, killed } = await killedMidway(dst.port, ['backup', 'restore', backups['redis-logical'].id, '--to', `redis://127.0.0.1:${dst.port}/0`, ...(mode === 'none' ? [] : [mode])]);
        expect(killed).toBe(true);
        expect(r.code).toBe(1);
        expect(await state(dst.port, 0)).toEqual(before);
        expect(r.stderr).toMatch(/the target was put back as it was/);
        // The same restore, not interrupted, writes the backup's keys (and keeps or drops the rest).
        const ok = await run(['backup', 'restore', backups['redis-logical'].id, '--to', `redis://127.0.0.1:${dst.port}/0`, ...(mode === 'none' ? [] : [mode])]);
        expect(ok.code, ok.stderr).toBe(0);
        const after = await state(dst.port, 0);
        expect(after.size).toBe(mode === '--replace' ? 20000 + 501 : 20000);
      } finally {
        await dst.stop();
      }
    });
  }
});

describe('file restores (SQLite, RDB) put the result in place only when it checked out', () => {
  it('a damaged artifact leaves an existing target file as it was (with --replace too) and no temp file', async () => {
    const Database = (await import('better-sqlite3')).default;
    const srcDb = join(tempDir('sqlite'), 'app.db');
    const d = new Database(srcDb);
    d.exec("CREATE TABLE t (x); INSERT INTO t SELECT value FROM json_each('[1,2,3]')");
    d.close();
    expect((await run(['plan', 'create', 'file-sqlite', '--source', `sqlite://${srcDb}`, '--pool', 'local'])).code).toBe(0);
    const sq = (await run(['--json', 'plan', 'run', 'file-sqlite'])).json().backup;
    const cases: Array<{ b: typeof sq; args: (dir: string) => string[]; file: (dir: string) => string }> = [
      { b: sq, args: (dir) => ['--to', `sqlite://${join(dir, 'app.db')}`, '--replace'], file: (dir) => join(dir, 'app.db') },
      { b: backups['redis-snapshot'], args: (dir) => ['--to-dir', dir, '--replace'], file: (dir) => join(dir, 'dump.rdb') },
    ];
    for (const c of cases) {
      const art = join(poolDir, c.b.manifest.artifacts[0].key);
      const good = readFileSync(art);
      const dir = tempDir('filetarget');
      writeFileSync(c.file(dir), 'previous content');
      try {
        writeFileSync(art, flip(good));
        const r = await run(['backup', 'restore', c.b.id, ...c.args(dir)]);
        expect(r.code, r.stderr).toBe(1);
        expect(readFileSync(c.file(dir), 'utf8')).toBe('previous content');
        const { readdirSync } = await import('node:fs');
        expect(readdirSync(dir)).toEqual([c.file(dir).slice(dir.length + 1)]);
      } finally {
        writeFileSync(art, good);
      }
      const ok = await run(['backup', 'restore', c.b.id, ...c.args(dir)]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(readFileSync(c.file(dir)).equals(Buffer.from('previous content'))).toBe(false);
    }
  });
});
