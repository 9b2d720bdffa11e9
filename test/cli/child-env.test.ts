// What environment dbs gives the programs it runs. dbs runs with secrets of its own in its
// environment (another plan's --password-env variable, AWS keys); no tool may see them.
// Each tool name is put first on PATH as a two-line shell script that writes its environment
// to a file and execs the real tool: this records what dbs passes, the tools do the real work.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dbsBin } from '../support/cli.js';
import { startMariaDB, type MariaDBServer } from '../support/mariadb.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { queryRows, tempDir } from '../support/testbed.js';
import { findOnPath } from '../../src/which.js';

const SENTINEL = `sentinel-${randomBytes(8).toString('hex')}`;
const MYSQL_PW = `mpw-${randomBytes(6).toString('hex')}`;
const REDIS_PW = `rpw-${randomBytes(6).toString('hex')}`;
const TOOLS = ['mariadb-dump', 'mysqldump', 'mariadb', 'mysql', 'mariadb-backup', 'mariabackup', 'mbstream', 'redis-cli', 'redis-check-rdb', 'zstd', 'pzstd', 'stdbuf', 'setpriv'];

let m: MariaDBServer;
let r: RedisServer;
let home: string;
let dumps: string;
let env: NodeJS.ProcessEnv;

const run = (args: string[]) => dbsBin(args, { home, env });

/** Every environment a wrapped tool was started with: [tool, variables]. */
function seen(): [string, Record<string, string>][] {
  return readdirSync(dumps).map((f) => {
    const vars: Record<string, string> = {};
    for (const line of readFileSync(join(dumps, f), 'utf8').split('\0')) {
      const i = line.indexOf('=');
      if (i > 0) vars[line.slice(0, i)] = line.slice(i + 1);
    }
    return [f.replace(/\.\d+$/, ''), vars];
  });
}

function expectNoSecrets(tools: string[]) {
  const all = seen();
  for (const t of tools) expect(all.map(([x]) => x), `${t} was not run`).toContain(t);
  for (const [tool, vars] of all) {
    for (const name of ['AWS_SECRET_ACCESS_KEY', 'FOO_PW', 'SRC_PW', 'REDIS_PW', 'MYSQL_PWD', 'DBS_HOME']) expect(vars[name], `${tool} saw ${name}`).toBeUndefined();
    for (const [k, v] of Object.entries(vars)) {
      expect(v, `${tool} saw a secret in ${k}`).not.toContain(SENTINEL);
      // The source password reaches a tool only where it needs one, by its own variable.
      if (k !== 'REDISCLI_AUTH') expect(v, `${tool} saw a password in ${k}`).not.toMatch(new RegExp(`${MYSQL_PW}|${REDIS_PW}`));
    }
    expect(Object.keys(vars), tool).toContain('PATH');
  }
}

beforeAll(async () => {
  [m, r] = await Promise.all([startMariaDB({ rootPassword: MYSQL_PW }), startRedis({ password: REDIS_PW })]);
  const c = await mysql.createConnection({ host: '127.0.0.1', port: m.port, user: 'root', password: MYSQL_PW, multipleStatements: true });
  await c.query('CREATE DATABASE envdb; USE envdb; CREATE TABLE envdb.t (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB; INSERT INTO envdb.t SELECT seq, CONCAT("v", seq) FROM seq_1_to_500;');
  await c.end();
  const fake = tempDir('wrap');
  dumps = tempDir('envs');
  for (const t of TOOLS) {
    const real = findOnPath(t);
    if (!real) throw new Error(`${t} is not installed: the test bed needs it`);
    writeFileSync(join(fake, t), `#!/bin/sh\n/usr/bin/env -0 > "${dumps}/${t}.$$"\nexec ${real} "$@"\n`, { mode: 0o755 });
  }
  home = tempDir('home');
  env = {
    PATH: `${fake}:${process.env.PATH}`,
    AWS_SECRET_ACCESS_KEY: SENTINEL,
    FOO_PW: SENTINEL,
    MYSQL_PWD: SENTINEL,
    SRC_PW: MYSQL_PW,
    REDIS_PW: REDIS_PW,
  };
  const b = await run(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('pool')]);
  expect(b.code, b.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await Promise.all([m?.stop(), r?.stop()]);
});

describe('no child sees dbs secrets', () => {
  beforeEach(() => {
    for (const f of readdirSync(dumps)) rmSync(join(dumps, f));
  });

  it('mysql logical: backup and restore', async () => {
    const src = `mysql://root@127.0.0.1:${m.port}`;
    expect((await run(['plan', 'create', 'logical', '--source', src, '--password-env', 'SRC_PW', '--pool', 'p', '--databases', 'envdb'])).code).toBe(0);
    const b = await run(['--json', 'plan', 'run', 'logical']);
    expect(b.code, b.stderr).toBe(0);
    const id = JSON.parse(b.stdout).backup.id;
    const rs = await run(['backup', 'restore', id, '--to', src, '--password-env', 'SRC_PW', '--database', 'envdb:envdb_copy']);
    expect(rs.code, rs.stderr).toBe(0);
    const c = await mysql.createConnection({ host: '127.0.0.1', port: m.port, user: 'root', password: MYSQL_PW });
    const [row] = await queryRows<{ n: number }>(c, 'SELECT COUNT(*) AS n FROM envdb_copy.t');
    await c.end();
    expect(row.n).toBe(500);
    expectNoSecrets(['mariadb-dump', 'mariadb', 'stdbuf', 'setpriv', 'pzstd']);
  }, 120_000);

  it('mysql physical: backup and restore (prepare) into a datadir', async () => {
    const src = `mysql://root@127.0.0.1:${m.port}`;
    expect((await run(['plan', 'create', 'physical', '--source', src, '--password-env', 'SRC_PW', '--pool', 'p', '--type', 'physical'])).code).toBe(0);
    const b = await run(['--json', 'plan', 'run', 'physical']);
    expect(b.code, b.stderr).toBe(0);
    const id = JSON.parse(b.stdout).backup.id;
    const datadir = join(tempDir('restore'), 'datadir');
    const rs = await run(['backup', 'restore', id, '--to-datadir', datadir]);
    expect(rs.code, rs.stderr).toBe(0);
    expect(existsSync(join(datadir, 'envdb', 't.ibd'))).toBe(true);
    expectNoSecrets(['mariadb-backup', 'mbstream']);
  }, 240_000);

  it('redis snapshot (rdb): backup and restore', async () => {
    const { Redis } = await import('ioredis');
    const c = new Redis({ host: '127.0.0.1', port: r.port, password: REDIS_PW, maxRetriesPerRequest: 1 });
    await c.set('k', 'v');
    c.disconnect();
    expect((await run(['plan', 'create', 'rdb', '--source', `redis://127.0.0.1:${r.port}`, '--password-env', 'REDIS_PW', '--pool', 'p', '--type', 'snapshot'])).code).toBe(0);
    const b = await run(['--json', 'plan', 'run', 'rdb']);
    expect(b.code, b.stderr).toBe(0);
    const id = JSON.parse(b.stdout).backup.id;
    const dir = tempDir('rdb');
    const rs = await run(['backup', 'restore', id, '--to-dir', dir]);
    expect(rs.code, rs.stderr).toBe(0);
    expect(readFileSync(join(dir, 'dump.rdb')).subarray(0, 5).toString()).toBe('REDIS');
    expectNoSecrets(['redis-cli', 'redis-check-rdb']);
    // redis-cli did get the password it needs, by REDISCLI_AUTH.
    expect(seen().some(([t, v]) => t === 'redis-cli' && v.REDISCLI_AUTH === REDIS_PW)).toBe(true);
  }, 120_000);
});
