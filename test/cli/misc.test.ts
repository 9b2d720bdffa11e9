// doctor, progress on a terminal, the delete-during-restore refusal, and secrets at rest.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { dbs } from '../support/cli.js';
import { bigSqlite } from '../support/fixtures.js';
import { mysqlConn, servers, tempDir, testbed } from '../support/testbed.js';

const BIN = new URL('../../bin/dbs.js', import.meta.url).pathname;


describe('dbs doctor', () => {
  it('reports the tools each engine needs, with versions', async () => {
    const r = await dbs(['--json', 'doctor'], { home: tempDir('home') });
    expect(r.code, r.stderr).toBe(0);
    const d = r.json();
    expect(d.node).toMatch(/^v2[2-9]\./);
    const mysql = d.engines.find((e: { kind: string }) => e.kind === 'mysql');
    const dump = mysql.tools.find((t: { name: string }) => t.name === 'mariadb-dump');
    expect(dump).toMatchObject({ found: true });
    expect(dump.version).toMatch(/\d+\.\d+/);
    // The data path's optional helpers, each found here (the test machine installs them).
    expect(d.dataPath.map((t: { name: string; found: boolean; version?: string }) => [t.name, t.found, /^\d+\.\d+/.test(t.version ?? '')])).toEqual([
      ['zstd', true, true],
      ['pzstd', true, true],
      ['stdbuf', true, true],
      ['setpriv', true, true],
    ]);
    const human = await dbs(['doctor'], { home: tempDir('home') });
    expect(human.stdout).toMatch(/ENGINE.*TOOL.*FOUND.*VERSION/);
    expect(human.stdout).toMatch(/Data path[\s\S]*setpriv\s.*yes/);
  });
});

describe('progress', () => {
  it('draws a progress bar on a terminal and none otherwise', async () => {
    const home = tempDir('home');
    await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('pool')], { home });
    await dbs(['plan', 'create', 'big', '--source', `sqlite://${bigSqlite(40)}`, '--pool', 'p', '--compress', 'gzip'], { home });
    const tty = await dbs(['plan', 'run', 'big'], { home, tty: true });
    expect(tty.code, tty.stderr).toBe(0);
    expect(tty.stderr).toMatch(/\rbacking up big .*MiB.*\/s/);
    const plain = await dbs(['plan', 'run', 'big'], { home });
    expect(plain.stderr).not.toContain('\r');
    const json = await dbs(['--json', 'plan', 'run', 'big'], { home, tty: true });
    expect(json.stderr).not.toContain('\r');
  });
});

describe('backup delete during a restore', () => {
  it('is refused while the restore runs, and allowed after', async () => {
    const home = tempDir('home');
    await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('pool')], { home });
    await dbs(['plan', 'create', 'big', '--source', `sqlite://${bigSqlite(150)}`, '--pool', 'p', '--compress', 'none'], { home });
    const id = (await dbs(['--json', 'plan', 'run', 'big'], { home })).json().backup.id as string;
    const target = join(tempDir('out'), 'restored.db');
    const restore = execa(process.execPath, [BIN, '--home', home, 'backup', 'restore', id, '--to', `sqlite://${target}`], { reject: false });
    let refused;
    for (let i = 0; i < 200; i++) {
      const list = (await dbs(['--json', 'restore', 'list'], { home })).json() as { status: string }[];
      if (list.some((r) => r.status === 'running')) {
        refused = await dbs(['backup', 'delete', id], { home });
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(refused?.code).toBe(4);
    expect(refused?.stderr).toMatch(/is being restored/);
    expect((await restore).exitCode).toBe(0);
    const del = await dbs(['backup', 'delete', id], { home });
    expect(del.code, del.stderr).toBe(0);
    expect((await dbs(['--json', 'backup', 'list'], { home })).json()).toEqual([]);
  });
});

describe('secrets at rest', () => {
  beforeAll(() => servers('mariadb'));
  it('the pool holds no secret: plan files and manifests are redacted', async () => {
    const home = tempDir('home');
    const pool = tempDir('pool');
    const secret = 'pool-file-secret-7788';
    await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', pool], { home });
    const src = join(tempDir('src'), 'a.db');
    new Database(src).exec('CREATE TABLE t (x)');
    // A SQLite source has no password: giving it one is refused and leaves nothing behind.
    expect((await dbs(['plan', 'create', 'a', '--source', `sqlite://${src}`, '--pool', 'p'], { home })).code).toBe(0);
    expect((await dbs(['plan', 'update', 'a', '--password-env', 'PW'], { home, env: { PW: secret } })).code).toBe(2);
    expect((await dbs(['plan', 'run', 'a'], { home })).code).toBe(0);
    // A MySQL source with that password: its plan file and manifest must not hold it.
    const root = await mysqlConn(testbed().mariadb);
    const user = `sec_${randomBytes(3).toString('hex')}`;
    await root.query(`CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${secret}'; GRANT ALL PRIVILEGES ON *.* TO '${user}'@'127.0.0.1'; CREATE DATABASE IF NOT EXISTS sec_db; CREATE TABLE IF NOT EXISTS sec_db.t (x INT)`);
    await root.end();
    const m = await dbs(['plan', 'create', 'm', '--source', `mysql://${user}@127.0.0.1:${testbed().mariadb.port}`, '--password-env', 'PW', '--pool', 'p', '--databases', 'sec_db'], { home, env: { PW: secret } });
    expect(m.code, m.stderr).toBe(0);
    expect((await dbs(['plan', 'run', 'm'], { home })).code).toBe(0);
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(pool);
    expect(files.some((f) => f.endsWith('manifest.json'))).toBe(true);
    expect(files.some((f) => /plans\/plan-.*\.json$/.test(f))).toBe(true);
    for (const f of files) expect(readFileSync(f).includes(secret), f).toBe(false);
    for (const args of [['--json', 'plan', 'show', 'a'], ['--json', 'plan', 'list'], ['--json', 'task', 'list'], ['--json', 'events']]) {
      const r = await dbs(args, { home });
      expect(r.stdout + r.stderr).not.toContain(secret);
    }
  });
});
