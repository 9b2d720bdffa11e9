// SQLite snapshots (and the catalog's own backup) through the CLI.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
// The catalog's SQLite (node:sqlite): a second SQLite library must not open a file dbs has open
// in this process (src/store/sqlite.ts).
import { Db as Database } from '../../src/store/sqlite.js';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { tableDigests } from '../../src/core/quickstart.js';
import { dbs } from '../support/cli.js';
import { tempDir } from '../support/testbed.js';

async function setup() {
  const home = tempDir('home');
  const pool = tempDir('pool');
  const r = await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', pool], { home });
  expect(r.code, r.stderr).toBe(0);
  return { home, pool };
}

// A writer in another process: each transaction inserts a row into `ledger` and adds its
// amount to `totals`, so sum(ledger.amount) = totals.sum holds in every consistent state.
const WRITER = `
const Database = require(process.argv[2]);
const db = new Database(process.argv[3]);
db.pragma('journal_mode = WAL');
db.pragma('busy_timeout = 5000');
const ins = db.prepare('INSERT INTO ledger (amount, pad) VALUES (?, randomblob(512))');
const upd = db.prepare('UPDATE totals SET sum = sum + ?, n = n + 1');
const tx = db.transaction((a) => { ins.run(a); upd.run(a); });
const end = Date.now() + Number(process.argv[4]);
let i = 0;
while (Date.now() < end) { tx((i % 97) + 1); i++; }
console.log(i);
`;

describe('sqlite snapshot', () => {
  it('a database written to during the backup restores to a consistent state', async () => {
    const { home } = await setup();
    const dir = tempDir('app');
    const path = join(dir, 'app.db');
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER, pad BLOB); CREATE TABLE totals (sum INTEGER, n INTEGER); INSERT INTO totals VALUES (0, 0);');
    db.transaction(() => {
      const ins = db.prepare('INSERT INTO ledger (amount, pad) VALUES (?, randomblob(4096))');
      for (let i = 0; i < 8000; i++) ins.run(0);
    })();
    db.close();
    const c = await dbs(['plan', 'create', 'app', '--source', `sqlite://${path}`, '--pool', 'p'], { home });
    expect(c.code, c.stderr).toBe(0);
    const script = join(dir, 'writer.cjs');
    writeFileSync(script, WRITER);
    const writer = execa(process.execPath, [script, new URL('../../node_modules/better-sqlite3/lib/index.js', import.meta.url).pathname, path, '3000']);
    await new Promise((r) => setTimeout(r, 300));
    const runs = [];
    for (let i = 0; i < 3; i++) {
      const r = await dbs(['--json', 'plan', 'run', 'app'], { home });
      expect(r.code, r.stderr).toBe(0);
      runs.push(r.json().backup.id as string);
    }
    const w = await writer;
    expect(Number(w.stdout)).toBeGreaterThan(100); // the writer really wrote during the runs
    for (const id of runs) {
      const out = join(dir, `restored-${id}.db`);
      const rs = await dbs(['backup', 'restore', id, '--to', `sqlite://${out}`], { home });
      expect(rs.code, rs.stderr).toBe(0);
      const back = new Database(out, { readonly: true });
      const { s } = back.prepare('SELECT sum(amount) AS s FROM ledger').get() as { s: number };
      const t = back.prepare('SELECT sum, n FROM totals').get() as { sum: number; n: number };
      const { k } = back.prepare('SELECT count(*) - 8000 AS k FROM ledger').get() as { k: number };
      expect(back.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(s).toBe(t.sum);
      expect(k).toBe(t.n);
      back.close();
    }
  });

  it('restores equal rows; refuses an existing target file without --yes; not-a-database is refused', async () => {
    const { home } = await setup();
    const dir = tempDir('app');
    const path = join(dir, 'a.db');
    const db = new Database(path);
    db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB); INSERT INTO t VALUES ('x', x'00ff10'), ('emoji 😀', NULL);");
    db.close();
    expect((await dbs(['plan', 'create', 'a', '--source', `sqlite://${path}`, '--pool', 'p'], { home })).code).toBe(0);
    const id = (await dbs(['--json', 'plan', 'run', 'a'], { home })).json().backup.id;
    const out = join(dir, 'out.db');
    writeFileSync(out, 'precious');
    const refused = await dbs(['backup', 'restore', id, '--to', `sqlite://${out}`], { home });
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/exists/);
    const yes = await dbs(['--yes', 'backup', 'restore', id, '--to', `sqlite://${out}`], { home });
    expect(yes.code, yes.stderr).toBe(0);
    expect(tableDigests(out)).toEqual(tableDigests(path));

    const notDb = join(dir, 'not.db');
    writeFileSync(notDb, 'this is not a database, just text '.repeat(200));
    const bad = await dbs(['plan', 'create', 'nd', '--source', `sqlite://${notDb}`, '--pool', 'p'], { home });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/not a SQLite database/);
    const missing = await dbs(['plan', 'create', 'nd', '--source', `sqlite://${dir}/missing.db`, '--pool', 'p'], { home });
    expect(missing.code).toBe(3);
  });

  it('--source catalog backs up dbs’s own catalog', async () => {
    const { home } = await setup();
    // The catalog holds secrets: its plan must encrypt (test/cli/encryption.test.ts).
    const key = join(tempDir('key'), 'key.txt');
    await execa('age-keygen', ['-o', key]);
    const recipient = (await execa('age-keygen', ['-y', key])).stdout.trim();
    const c = await dbs(['--json', 'plan', 'create', 'platform', '--source', 'catalog', '--pool', 'p', '--keep-last', '7', '--encrypt-to', recipient], { home });
    expect(c.code, c.stderr).toBe(0);
    expect(c.json().plan.sourceKind).toBe('catalog');
    const r = await dbs(['--json', 'plan', 'run', 'platform'], { home });
    expect(r.code, r.stderr).toBe(0);
    const out = join(tempDir('restore'), 'catalog.db');
    const rs = await dbs(['backup', 'restore', r.json().backup.id, '--to', `sqlite://${out}`, '--identity-file', key], { home });
    expect(rs.code, rs.stderr).toBe(0);
    const back = new Database(out, { readonly: true });
    expect((back.prepare('SELECT name FROM plans').all() as { name: string }[]).map((x) => x.name)).toEqual(['platform']);
    expect((back.prepare('SELECT name FROM pools').all() as { name: string }[]).map((x) => x.name)).toEqual(['p']);
    back.close();
  });
});
