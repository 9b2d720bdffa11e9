// Concurrent dbs processes on one catalog: creates of one name, binds of one location,
// probes of one pool, and the first open of a new catalog. Real processes (bin/dbs.js).
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
// The catalog's SQLite (node:sqlite): a second SQLite library must not open a file dbs has open
// in this process (src/store/sqlite.ts).
import { Db as Database } from '../../src/store/sqlite.js';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { probePool } from '../../src/core/pools.js';
import { openDriver } from '../../src/storage/registry.js';
import { migrations } from '../../src/store/migrations.js';
import { dbs } from '../support/cli.js';
import { smallSqlite } from '../support/fixtures.js';
import { tempDir } from '../support/testbed.js';

const BIN = new URL('../../bin/dbs.js', import.meta.url).pathname;
const N = 6;
/** Start-up times vary (2 cores, other load): repeat each race so that it really races. */
const ROUNDS = 3;

/** Starts N real dbs processes at once and returns their exit codes and stderr. */
async function together(home: string, argvOf: (i: number) => string[]) {
  const procs = Array.from({ length: N }, (_, i) => execa(process.execPath, [BIN, '--home', home, ...argvOf(i)], { reject: false, timeout: 60_000 }));
  return (await Promise.all(procs)).map((r) => ({ code: r.exitCode, stderr: String(r.stderr) }));
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
    const src = smallSqlite();
    for (let round = 0; round < ROUNDS; round++) {
      const rs = await together(home, () => ['plan', 'create', `shop${round}`, '--source', `sqlite://${src}`, '--pool', 'p']);
      expectOneWinner(rs, new RegExp(`a plan named "shop${round}" already exists \\[ALREADY_EXISTS\\]`));
    }
    const plans = (await dbs(['--json', 'plan', 'list'], { home })).json() as { id: string; name: string }[];
    expect(plans.map((p) => p.name).sort()).toEqual(Array.from({ length: ROUNDS }, (_, i) => `shop${i}`));
    // Only the winners' plan files are in the pool; no probe object is left behind.
    expect(readdirSync(join(pool, 'dbs', 'plans')).sort()).toEqual(plans.map((p) => `${p.id}.json`).sort());
    expect(existsSync(join(pool, 'dbs', 'probe'))).toBe(false);
  }, 120_000);

  it(`${N} x plan update --name NEW of different plans: one renames, the others exit 4`, async () => {
    const home = tempDir('home');
    expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('pool')], { home })).code).toBe(0);
    const src = smallSqlite();
    for (let i = 0; i < N * ROUNDS; i++) expect((await dbs(['plan', 'create', `p${i}`, '--source', `sqlite://${src}`, '--pool', 'p'], { home })).code).toBe(0);
    for (let round = 0; round < ROUNDS; round++) {
      const rs = await together(home, (i) => ['plan', 'update', `p${round * N + i}`, '--name', `renamed${round}`]);
      expectOneWinner(rs, new RegExp(`a plan named "renamed${round}" already exists`));
    }
    const names = ((await dbs(['--json', 'plan', 'list'], { home })).json() as { name: string }[]).map((p) => p.name);
    for (let round = 0; round < ROUNDS; round++) expect(names.filter((n) => n === `renamed${round}`)).toHaveLength(1);
    expect(names).toHaveLength(N * ROUNDS);
  }, 120_000);

  it(`${N} x pool bind NAME of different folders: one binds, the others exit 4 and leave no pool marker`, async () => {
    const home = tempDir('home');
    const root = tempDir('pools');
    const dirs = Array.from({ length: N * ROUNDS }, (_, i) => join(root, `d${i}`));
    for (const d of dirs) mkdirSync(d);
    for (let round = 0; round < ROUNDS; round++) {
      const rs = await together(home, (i) => ['pool', 'bind', `q${round}`, '--type', 'local', '--path', dirs[round * N + i]]);
      expectOneWinner(rs, new RegExp(`a pool named "q${round}" already exists`));
    }
    const pools = (await dbs(['--json', 'pool', 'list'], { home })).json() as { location: string }[];
    expect(pools).toHaveLength(ROUNDS);
    // Nothing changed for the losers: no marker that a later bind would "adopt".
    const marked = dirs.filter((d) => existsSync(join(d, 'dbs', 'pool.json')));
    expect(marked.sort()).toEqual(pools.map((p) => p.location).sort());
  }, 120_000);

  it(`${N} x pool bind of one folder under different names: one binds, the others exit 4`, async () => {
    const home = tempDir('home');
    for (let round = 0; round < ROUNDS; round++) {
      const dir = tempDir('pool');
      const rs = await together(home, (i) => ['pool', 'bind', `q${round}-${i}`, '--type', 'local', '--path', dir]);
      expectOneWinner(rs, /already bound/);
      expect(existsSync(join(dir, 'dbs', 'pool.json'))).toBe(true);
    }
    expect((await dbs(['--json', 'pool', 'list'], { home })).json()).toHaveLength(ROUNDS);
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

describe('concurrent probes, in one process', () => {
  it('3 drivers probing one local folder in loops (300 probes) all succeed and leave nothing behind', async () => {
    // Few at once, so the probe folder is often empty: one probe's delete prunes it while
    // another probe is between its mkdir and its open.
    const dir = tempDir('pool');
    const drivers = await Promise.all(Array.from({ length: 3 }, () => openDriver({ type: 'local', config: { path: dir } }, undefined)));
    const failed: string[] = [];
    await Promise.all(
      drivers.map(async (d) => {
        for (let i = 0; i < 100; i++) await probePool(d).catch((e: unknown) => failed.push(String(e)));
      }),
    );
    expect(failed).toEqual([]);
    expect(existsSync(join(dir, 'dbs'))).toBe(false);
    await Promise.all(drivers.map((d) => d.close()));
  });
});

describe('first use of a new catalog', () => {
  it('a process that read the schema version while another was migrating does not migrate twice', async () => {
    // Process A (this test) holds the first migration's transaction open; process B (dbs)
    // starts meanwhile, reads "nothing applied", waits for the lock, then must not apply it again.
    const home = join(tempDir('h'), 'home');
    mkdirSync(home, { mode: 0o700 });
    const db = new Database(join(home, 'catalog.db'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    db.exec('BEGIN IMMEDIATE');
    db.exec(migrations[0].sql);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(migrations[0].version, migrations[0].name, new Date().toISOString());
    const b = execa(process.execPath, [BIN, '--home', home, 'pool', 'list'], { reject: false, timeout: 60_000 });
    await new Promise((r) => setTimeout(r, 2500)); // B is started and waits for the lock (busy_timeout 5 s)
    db.exec('COMMIT');
    db.close();
    const r = await b;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/no pools bound/);
  }, 60_000);

  it(`${N} processes opening a catalog that does not exist yet all succeed`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const home = join(tempDir('h'), 'new-home');
      const rs = await together(home, () => ['pool', 'list']);
      expect(rs.map((r) => r.code), rs.map((r) => r.stderr).join('\n')).toEqual(Array(N).fill(0));
    }
  }, 120_000);
});
