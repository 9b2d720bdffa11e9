// Concurrent dbs processes on one catalog: creates of one name, binds of one location,
// probes of one pool, and the first open of a new catalog. Real processes (bin/dbs.js).
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { dbs } from '../support/cli.js';
import { tempDir } from '../support/testbed.js';

const BIN = new URL('../../bin/dbs.js', import.meta.url).pathname;
const N = 6;

/** Starts N real dbs processes at once and returns their exit codes and stderr. */
async function together(home: string, argvOf: (i: number) => string[]) {
  const procs = Array.from({ length: N }, (_, i) => execa(process.execPath, [BIN, '--home', home, ...argvOf(i)], { reject: false, timeout: 60_000 }));
  return (await Promise.all(procs)).map((r) => ({ code: r.exitCode, stderr: String(r.stderr) }));
}

function sqliteSource(): string {
  const path = join(tempDir('src'), 'app.db');
  const db = new Database(path);
  db.exec("CREATE TABLE t (x); INSERT INTO t VALUES ('hello');");
  db.close();
  return path;
}

function expectOneWinner(rs: { code: number | undefined; stderr: string }[], loser: RegExp) {
  const codes = rs.map((r) => r.code).sort();
  expect(codes, rs.map((r) => r.stderr).join('\n')).toEqual([0, ...Array(N - 1).fill(4)]);
  for (const r of rs.filter((x) => x.code === 4)) {
    expect(r.stderr).toMatch(loser);
    expect(r.stderr).not.toMatch(/internal error|UNIQUE/);
  }
}

describe('concurrent creates of one name', () => {
  it(`${N} x plan create NAME: one creates it, the others exit 4 "already exists"`, async () => {
    const home = tempDir('home');
    const pool = tempDir('pool');
    expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', pool], { home })).code).toBe(0);
    const src = sqliteSource();
    const rs = await together(home, () => ['plan', 'create', 'shop', '--source', `sqlite://${src}`, '--pool', 'p']);
    expectOneWinner(rs, /a plan named "shop" already exists \[ALREADY_EXISTS\]/);
    const plans = (await dbs(['--json', 'plan', 'list'], { home })).json() as { id: string; name: string }[];
    expect(plans.map((p) => p.name)).toEqual(['shop']);
    // Only the winner's plan file is in the pool; no probe object is left behind.
    expect(readdirSync(join(pool, 'dbs', 'plans'))).toEqual([`${plans[0].id}.json`]);
    expect(existsSync(join(pool, 'dbs', 'probe'))).toBe(false);
  }, 120_000);

  it(`${N} x plan update --name NEW of different plans: one renames, the others exit 4`, async () => {
    const home = tempDir('home');
    expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('pool')], { home })).code).toBe(0);
    const src = sqliteSource();
    for (let i = 0; i < N; i++) expect((await dbs(['plan', 'create', `p${i}`, '--source', `sqlite://${src}`, '--pool', 'p'], { home })).code).toBe(0);
    const rs = await together(home, (i) => ['plan', 'update', `p${i}`, '--name', 'renamed']);
    expectOneWinner(rs, /a plan named "renamed" already exists/);
    const names = ((await dbs(['--json', 'plan', 'list'], { home })).json() as { name: string }[]).map((p) => p.name);
    expect(names.filter((n) => n === 'renamed')).toHaveLength(1);
    expect(names).toHaveLength(N);
  }, 120_000);

  it(`${N} x pool bind NAME of different folders: one binds, the others exit 4 and leave no pool marker`, async () => {
    const home = tempDir('home');
    const root = tempDir('pools');
    for (let i = 0; i < N; i++) mkdirSync(join(root, `d${i}`));
    const rs = await together(home, (i) => ['pool', 'bind', 'q', '--type', 'local', '--path', join(root, `d${i}`)]);
    expectOneWinner(rs, /a pool named "q" already exists/);
    const pools = (await dbs(['--json', 'pool', 'list'], { home })).json() as { location: string }[];
    expect(pools).toHaveLength(1);
    // Nothing changed for the losers: no marker that a later bind would "adopt".
    const marked = Array.from({ length: N }, (_, i) => join(root, `d${i}`)).filter((d) => existsSync(join(d, 'dbs', 'pool.json')));
    expect(marked).toEqual([pools[0].location]);
  }, 120_000);

  it(`${N} x pool bind of one folder under different names: one binds, the others exit 4`, async () => {
    const home = tempDir('home');
    const dir = tempDir('pool');
    const rs = await together(home, (i) => ['pool', 'bind', `q${i}`, '--type', 'local', '--path', dir]);
    expectOneWinner(rs, /already bound/);
    expect((await dbs(['--json', 'pool', 'list'], { home })).json()).toHaveLength(1);
  }, 120_000);
});

describe('concurrent probes', () => {
  it(`${N} x pool check of one local pool, 3 rounds: every probe succeeds, the pool stays online`, async () => {
    const home = tempDir('home');
    expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('pool')], { home })).code).toBe(0);
    for (let round = 0; round < 3; round++) {
      const rs = await together(home, () => ['pool', 'check', 'p']);
      expect(rs.map((r) => r.code), rs.map((r) => r.stderr).join('\n')).toEqual(Array(N).fill(0));
    }
    const pool = (await dbs(['--json', 'pool', 'show', 'p'], { home })).json();
    expect(pool.status).toBe('online');
  }, 120_000);
});

describe('first use of a new catalog', () => {
  it(`${N} processes opening a catalog that does not exist yet all succeed`, async () => {
    const home = join(tempDir('h'), 'new-home');
    const rs = await together(home, () => ['pool', 'list']);
    expect(rs.map((r) => r.code), rs.map((r) => r.stderr).join('\n')).toEqual(Array(N).fill(0));
  }, 120_000);
});
