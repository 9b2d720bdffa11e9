// Physical and incremental MySQL backups through the CLI: a chain of full + 2 incrementals,
// restored into a new datadir, started, and compared; verify --prepare; the chain rules.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbs } from '../support/cli.js';
import { startMariaDB, type MariaDBServer } from '../support/mariadb.js';
import { freePort, killPid } from '../support/ports.js';
import { tempDir } from '../support/testbed.js';

let m: MariaDBServer;
let home: string;
let poolDir: string;
const run = (args: string[]) => dbs(args, { home });

async function checksums(port: number) {
  const c = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root' });
  try {
    const [tables] = (await c.query("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'app' ORDER BY table_name")) as unknown as [{ t: string }[]];
    const out: Record<string, string> = {};
    for (const { t } of tables) {
      const [[k]] = (await c.query(`CHECKSUM TABLE app.\`${t}\``)) as unknown as [[{ Checksum: string }]];
      const [[n]] = (await c.query(`SELECT COUNT(*) AS n FROM app.\`${t}\``)) as unknown as [[{ n: number }]];
      out[t] = `${k.Checksum}/${n.n}`;
    }
    return out;
  } finally {
    await c.end();
  }
}

async function sql(q: string, database?: string) {
  const c = await mysql.createConnection({ host: '127.0.0.1', port: m.port, user: 'root', multipleStatements: true, ...(database ? { database } : {}) });
  try {
    await c.query(q);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  m = await startMariaDB();
  await sql(`CREATE DATABASE app; USE app;
    CREATE TABLE app.orders (id INT PRIMARY KEY, total DECIMAL(12,2), note JSON, pic BLOB) ENGINE=InnoDB;
    INSERT INTO app.orders SELECT seq, seq * 1.5, JSON_OBJECT('n', seq), UNHEX(SHA2(seq, 256)) FROM seq_1_to_120000;
    CREATE TABLE app.log (id INT AUTO_INCREMENT PRIMARY KEY, msg TEXT) ENGINE=InnoDB;`);
  home = tempDir('home');
  poolDir = tempDir('pool');
  expect((await run(['pool', 'bind', 'p', '--type', 'local', '--path', poolDir])).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await m?.stop();
});

describe('physical + incremental chain', () => {
  let full: string;
  let inc2: string;
  let atInc2: Record<string, string>;

  it('builds a chain: full, then incrementals on the newest backup', async () => {
    const src = `mysql://root@127.0.0.1:${m.port}`;
    const f = await run(['--json', 'plan', 'create', 'full', '--source', src, '--pool', 'p', '--type', 'physical']);
    expect(f.code, f.stderr).toBe(0);
    const i = await run(['--json', 'plan', 'create', 'inc', '--type', 'incremental', '--base-plan', 'full', '--verify-prepare']);
    expect(i.code, i.stderr).toBe(0);
    expect(i.json().plan.associatedPlans).toEqual(['full']);
    const list = await run(['plan', 'list']);
    expect(list.stdout).toContain('ASSOCIATED PLAN');

    const none = await run(['plan', 'run', 'inc']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no base backup.*\n.*hint: run the base plan first/);

    const r0 = await run(['--json', 'plan', 'run', 'full']);
    expect(r0.code, r0.stderr).toBe(0);
    full = r0.json().backup.id;
    expect(r0.json().backup.manifest.facts.lsn.to).toMatch(/^\d+$/);
    expect(r0.json().backup.manifest.artifacts[0].name).toBe('backup.xbstream.zst');
    // Compressed by pzstd on every core and judged from its first and last frames.
    const stored = readFileSync(join(poolDir, r0.json().backup.manifest.artifacts[0].key));
    expect(stored.readUInt32LE(0)).toBe(0x184d2a50);

    await sql("INSERT INTO app.log (msg) SELECT CONCAT('one ', seq) FROM seq_1_to_5000; UPDATE app.orders SET total = total + 1 WHERE id % 7 = 0;", 'app');
    const r1 = await run(['--json', 'plan', 'run', 'inc']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.json().backup).toMatchObject({ backupType: 'incremental', parentId: full });
    expect(r1.json().backup.manifest.facts.verifyPrepare.ok).toBe(true);

    await sql("DELETE FROM app.orders WHERE id % 11 = 0; INSERT INTO app.log (msg) VALUES ('two');");
    const r2 = await run(['--json', 'plan', 'run', 'inc']);
    expect(r2.code, r2.stderr).toBe(0);
    inc2 = r2.json().backup.id;
    expect(r2.json().backup.parentId).toBe(r1.json().backup.id);
    atInc2 = await checksums(m.port);
    await sql("INSERT INTO app.log (msg) VALUES ('after the last backup')");
  });

  it('verify --prepare proves the chain restorable', async () => {
    const v = await run(['--json', 'backup', 'verify', inc2, '--prepare']);
    expect(v.code, v.stderr).toBe(0);
    expect(v.json()).toMatchObject({ ok: true, prepared: { ok: true } });
  });

  it('restores the last incremental into a new datadir, starts it, and the data equals the source at that moment', async () => {
    const dir = join(tempDir('restore'), 'datadir');
    const port = await freePort();
    const r = await run(['--json', 'backup', 'restore', inc2, '--to-datadir', dir, '--start', '--port', String(port)]);
    expect(r.code, r.stderr).toBe(0);
    const facts = r.json().options.result;
    try {
      expect(facts.port).toBe(port);
      expect(await checksums(port)).toEqual(atInc2);
    } finally {
      await killPid(facts.pid);
    }
    const again = await run(['backup', 'restore', inc2, '--to-datadir', dir]);
    expect(again.code).toBe(4);
    const human = await run(['backup', 'restore', inc2, '--to-datadir', join(tempDir('restore'), 'd2')]);
    expect(human.code, human.stderr).toBe(0);
  });

  it('refuses to break the chain; --cascade deletes dependents first', async () => {
    const del = await run(['backup', 'delete', full]);
    expect(del.code).toBe(4);
    expect(del.stderr).toMatch(/is the base of.*\n.*--cascade/);
    const planDel = await run(['plan', 'delete', 'full', '--with-backups']);
    expect(planDel.code).toBe(4);
    expect(planDel.stderr).toMatch(/base plan of inc/);
    const bad = await run(['plan', 'create', 'x', '--type', 'incremental', '--base-plan', 'inc']);
    expect(bad.code).toBe(2);
    const cascade = await run(['--json', 'backup', 'delete', full, '--cascade']);
    expect(cascade.code, cascade.stderr).toBe(0);
    expect(cascade.json().deleted).toHaveLength(3);
    expect(cascade.json().deleted.at(-1)).toBe(full);
    expect((await run(['--json', 'backup', 'list'])).json()).toEqual([]);
  });
});
