// The single executable (npm run build:exe -> dist/dbs), built once for this file, run end to end
// where PATH has no `node` and nothing of the checkout is reachable: quickstart, a MySQL logical
// backup into a local and an S3 pool and its restore (data compared), an encrypted one, --json
// parsed throughout.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { object, string } from '../../src/decode.js';
import { mysqlConn, servers, tempDir, testbed } from '../support/testbed.js';

const root = new URL('../..', import.meta.url).pathname;
const tag = randomBytes(3).toString('hex');
const DB = `exe_${tag}`;
const USER = `dbs_exe_${tag}`;
const PW = `pw-${randomBytes(8).toString('hex')}`;

let exe: string;
let nodeless: string;
let home: string;
let conn: Connection;

/** A PATH directory with every program of the system's bin directories except Node.js and npm. */
function pathWithoutNode(): string {
  const dir = tempDir('bin');
  for (const from of ['/usr/local/bin', '/usr/bin', '/usr/sbin', '/bin', '/sbin']) {
    if (!existsSync(from)) continue;
    for (const name of readdirSync(from)) {
      if (/^(node|nodejs|npm|npx|corepack)$/.test(name) || existsSync(join(dir, name))) continue;
      symlinkSync(join(from, name), join(dir, name));
    }
  }
  return dir;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}
function run(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  // A bare environment: what a service manager gives (no NODE_*, no npm_*, no node on PATH).
  const r = spawnSync(exe, args, { cwd: home, encoding: 'utf8', env: { PATH: nodeless, HOME: home, DB_PW: PW, S3_SECRET: testbed().s3.secretKey, ...env }, timeout: 120_000, killSignal: 'SIGKILL' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

async function tableFacts(db: string) {
  const [rows] = await conn.query(`SELECT COUNT(*) AS n, COALESCE(SUM(CRC32(CONCAT_WS('|', id, name, amount))), 0) AS h FROM \`${db}\`.items`);
  return rows;
}

beforeAll(async () => {
  await servers('mariadb', 's3');
  // Build once for this run: the real build, from the checkout's sources, into a copy outside it.
  execFileSync(process.execPath, [join(root, 'scripts', 'build-exe.mjs')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const dir = tempDir('exe');
  exe = join(dir, 'dbs');
  copyFileSync(join(root, 'dist', 'dbs'), exe);
  execFileSync('chmod', ['0755', exe]);
  nodeless = pathWithoutNode();
  home = tempDir('home');
  conn = await mysqlConn(testbed().mariadb);
  await conn.query(`CREATE DATABASE \`${DB}\``);
  await conn.query(`CREATE USER '${USER}'@'127.0.0.1' IDENTIFIED BY '${PW}'`);
  await conn.query(`GRANT ALL PRIVILEGES ON *.* TO '${USER}'@'127.0.0.1'`);
  await conn.query(`CREATE TABLE \`${DB}\`.items (id INT PRIMARY KEY, name VARCHAR(50) CHARACTER SET utf8mb4, amount DECIMAL(12,2))`);
  await conn.query(`USE \`${DB}\``);
  await conn.query(`INSERT INTO \`${DB}\`.items SELECT seq, CONCAT('item ', seq, ' ü'), seq * 1.5 FROM seq_1_to_20000`);
}, 420_000);

afterAll(async () => {
  await conn?.end();
});

describe('dist/dbs, the single executable', () => {
  it('runs where PATH has no node', () => {
    expect(spawnSync('sh', ['-c', 'command -v node'], { env: { PATH: nodeless } }).status).not.toBe(0);
    expect(spawnSync('sh', ['-c', 'command -v mariadb-dump && command -v zstd'], { env: { PATH: nodeless } }).status).toBe(0);
    const v = run(['--version', '--json']);
    expect(v.code, v.stderr).toBe(0);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(v.json()).toMatchObject({ type: 'version', version: pkg.version, node: expect.stringMatching(/^24\./), sqlite: expect.stringMatching(/^3\.\d+\.\d+$/), executable: true });
    expect(v.json().commit).toBe(execFileSync('git', ['-C', root, 'rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8' }).trim() + (execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() ? '-dirty' : ''));
    expect(statSync(exe).size).toBeGreaterThan(50_000_000);
  });

  it('embeds no native addon: it writes nothing to a cache or TMPDIR, and runs with both on noexec mounts', () => {
    const mnt = tempDir('noexec');
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,noexec', 'tmpfs', mnt], { encoding: 'utf8' });
    expect(m.status, `mounting a noexec tmpfs failed (this test needs root): ${m.stderr}`).toBe(0);
    try {
      const cache = join(mnt, 'dbs-cache');
      const h = join(home, 'noexec-home');
      const r = run(['--json', 'plan', 'list'], { TMPDIR: mnt, DBS_CACHE_DIR: cache, XDG_CACHE_HOME: mnt, DBS_HOME: h });
      expect(r.code, r.stderr).toBe(0);
      expect(r.json()).toEqual([]);
      // The SQLite engine too (quickstart backs up and restores a SQLite database).
      const q = run(['--json', 'quickstart'], { TMPDIR: mnt, DBS_CACHE_DIR: cache, XDG_CACHE_HOME: mnt, DBS_HOME: h });
      expect(q.code, q.stderr).toBe(0);
      expect(readdirSync(mnt)).toEqual([]);
      expect(existsSync(join(home, '.cache'))).toBe(false);
    } finally {
      spawnSync('umount', [mnt]);
    }
    expect(readFileSync(exe).includes(Buffer.from('better_sqlite3'))).toBe(false);
  });

  it('quickstart', () => {
    const q = run(['--json', 'quickstart'], { DBS_HOME: join(home, 'quickstart') });
    expect(q.code, q.stderr).toBe(0);
    const r = q.json();
    expect(r.backup.rawBytes).toBeGreaterThan(0);
    expect(r.home).toBe(join(home, 'quickstart'));
  });

  for (const pool of ['local', 's3']) {
    it(`a MySQL logical backup into the ${pool} pool and its restore give equal data`, async () => {
      const m = testbed().mariadb;
      const s3 = testbed().s3;
      const src = `mysql://${USER}@127.0.0.1:${m.port}`;
      const bind =
        pool === 'local'
          ? run(['--json', 'pool', 'bind', pool, '--type', 'local', '--path', tempDir('pool')])
          : run(['--json', 'pool', 'bind', pool, '--type', 's3', '--endpoint', s3.endpoint, '--prefix', `exe-${tag}`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET']);
      expect(bind.code, bind.stderr).toBe(0);
      const c = run(['--json', 'plan', 'create', `p-${pool}`, '--source', src, '--password-env', 'DB_PW', '--pool', pool, '--databases', DB]);
      expect(c.code, c.stderr).toBe(0);
      expect(c.json().plan).toMatchObject({ name: `p-${pool}`, sourceKind: 'mysql', backupType: 'logical' });
      const b = run(['--json', 'plan', 'run', `p-${pool}`]);
      expect(b.code, b.stderr).toBe(0);
      const { backup, task } = b.json();
      expect(task.status).toBe('succeeded');
      expect(backup.manifest.artifacts[0].name).toBe('dump.sql.zst');
      const target = `${DB}_r${pool}`;
      const rs = run(['--json', 'backup', 'restore', backup.id, '--to', src, '--password-env', 'DB_PW', '--database', `${DB}:${target}`]);
      expect(rs.code, rs.stderr).toBe(0);
      expect(rs.json()).toMatchObject({ status: 'succeeded', backupId: backup.id });
      expect(await tableFacts(target)).toEqual(await tableFacts(DB));
      const list = run(['--json', 'backup', 'list', '--plan', `p-${pool}`]);
      expect(list.json().map((x: { id: string }) => x.id)).toEqual([backup.id]);
    });
  }

  it('an encrypted backup (age, bundled in the executable, loaded on first use) restores with its identity to equal data', async () => {
    const m = testbed().mariadb;
    const src = `mysql://${USER}@127.0.0.1:${m.port}`;
    const key = join(tempDir('age'), 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    const recipient = execFileSync('age-keygen', ['-y', key], { encoding: 'utf8' }).trim();
    const c = run(['--json', 'plan', 'create', 'p-age', '--source', src, '--password-env', 'DB_PW', '--pool', 'local', '--databases', DB, '--encrypt-to', recipient]);
    expect(c.code, c.stderr).toBe(0);
    const b = run(['--json', 'plan', 'run', 'p-age']);
    expect(b.code, b.stderr).toBe(0);
    const { backup } = b.json();
    expect(backup.manifest.artifacts[0].name).toBe('dump.sql.zst.age');
    const target = `${DB}_rage`;
    const rs = run(['--json', 'backup', 'restore', backup.id, '--to', src, '--password-env', 'DB_PW', '--database', `${DB}:${target}`, '--identity-file', key]);
    expect(rs.code, rs.stderr).toBe(0);
    expect(await tableFacts(target)).toEqual(await tableFacts(DB));
  });

  it('a directory backup of several batches (content hashed by a worker thread inside the executable) restores to identical files', () => {
    const tree = join(tempDir('dir-src'), 'tree');
    const want = new Map<string, { sha: string; mode: number }>();
    for (let i = 0; i < 40; i++) {
      const rel = `d${i % 4}/f${i}.bin`;
      mkdirSync(join(tree, `d${i % 4}`), { recursive: true });
      const data = i % 2 ? randomBytes(600_000 + i) : Buffer.alloc(400_000 + i, `line ${i}\n`);
      writeFileSync(join(tree, rel), data, { mode: i % 3 ? 0o644 : 0o600 });
      want.set(rel, { sha: createHash('sha256').update(data).digest('hex'), mode: statSync(join(tree, rel)).mode & 0o7777 });
    }
    const env = { DBS_HOME: join(home, 'dir') };
    const pool = tempDir('dir-pool');
    expect(run(['pool', 'bind', 'dp', '--type', 'local', '--path', pool], env).code).toBe(0);
    const c = run(['plan', 'create', 'd', '--source', `dir://${tree}`, '--pool', 'dp', '--type', 'snapshot'], env);
    expect(c.code, c.stderr).toBe(0);
    const b = run(['--json', 'plan', 'run', 'd'], env);
    expect(b.code, b.stderr).toBe(0);
    const { backup } = b.json();
    expect(backup.rawBytes).toBeGreaterThan(3 * 4 * 1024 * 1024); // more than one 4 MiB batch: the worker hashes
    const out = join(tempDir('dir-out'), 'r');
    const r = run(['--json', 'backup', 'restore', backup.id, '--to-dir', out], env);
    expect(r.code, r.stderr).toBe(0);
    const got = new Map<string, { sha: string; mode: number }>();
    for (const d of readdirSync(out)) for (const f of readdirSync(join(out, d))) {
      const path = join(out, d, f);
      got.set(`${d}/${f}`, { sha: createHash('sha256').update(readFileSync(path)).digest('hex'), mode: statSync(path).mode & 0o7777 });
    }
    expect(got).toEqual(want);
    // Every file's content hash is in the index (the worker's results reached it), and equal.
    const index = execFileSync('sh', ['-c', 'zstd -dc "$1"/dbs/backups/*/*/index.jsonl.zst', 'sh', pool], { encoding: 'utf8' });
    const files = index.trim().split('\n').map((l) => object(JSON.parse(l), 'an index line')).filter((e) => e.type === 'file');
    expect(new Map(files.map((e) => [string(e, 'path', 'an index line'), string(e, 'sha256', 'an index line')]))).toEqual(new Map([...want].map(([k, v]) => [k, v.sha])));
  });

  it("carries bin/dbs.js's node flags (its shebang line) as the executable's execArgv", () => {
    const flags = /^#!\/usr\/bin\/env -S node(.*)$/.exec(readFileSync(join(root, 'bin', 'dbs.js'), 'utf8').split('\n', 1)[0]!)?.[1]?.trim().split(' ') ?? [];
    expect(flags).toContain('--max-semi-space-size=4');
    const blob = readFileSync(exe);
    for (const f of flags) expect(blob.includes(Buffer.from(f))).toBe(true);
  });

  it('a checkout-free copy: nothing of node_modules is read (the executable runs from another directory)', () => {
    const elsewhere = tempDir('elsewhere');
    mkdirSync(join(elsewhere, 'x'));
    const r = spawnSync(exe, ['--json', 'plan', 'list'], { cwd: join(elsewhere, 'x'), encoding: 'utf8', env: { PATH: nodeless, HOME: home, NODE_PATH: '/nonexistent' } });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).map((p: { name: string }) => p.name).sort()).toEqual(['p-age', 'p-local', 'p-s3']);
  });
});
