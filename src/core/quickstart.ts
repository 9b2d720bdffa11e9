// `dbs quickstart`: the main job end to end with no server. A local pool under DBS_HOME, a
// demo SQLite database, a plan, a run, a restore into a new file, and a check that the
// restored data equals the source.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import { runBackupList, type BackupSummary } from './backups.js';
import { runPlanCreate } from './plans.js';
import { runPlanRun } from './tasks.js';
import { runPoolBind } from './pools.js';
import { runBackupRestore } from './restore.js';

export interface QuickstartResult {
  home: string;
  pool: { name: string; id: string; path: string; created: boolean };
  database: string;
  plan: { name: string; id: string; created: boolean };
  backup: BackupSummary;
  restoredTo: string;
  check: { table: string; rows: number; sha256: string; equal: boolean }[];
  next: string[];
}

const POOL = 'quickstart';
const PLAN = 'quickstart-demo';

function createDemo(path: string): void {
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`
    CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, created TEXT NOT NULL);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers (id), total_cents INTEGER NOT NULL, note TEXT, payload BLOB);
  `);
  const c = db.prepare('INSERT INTO customers (name, email, created) VALUES (?, ?, ?)');
  const o = db.prepare('INSERT INTO orders (customer_id, total_cents, note, payload) VALUES (?, ?, ?, ?)');
  db.exec('BEGIN');
  for (let i = 1; i <= 500; i++) c.run(`Customer ${i} ✓`, `c${i}@example.com`, new Date(Date.UTC(2026, 0, 1 + (i % 300))).toISOString());
  for (let i = 1; i <= 5000; i++) o.run(1 + (i % 500), (i * 137) % 100000, i % 7 ? null : `gift 🎁 ${i}`, Buffer.from([i & 255, (i >> 8) & 255, 0, 255]));
  db.exec('COMMIT');
  db.close();
}

/** Row count and a sha256 over every row of every user table, in primary-key order. */
export function tableDigests(path: string): { table: string; rows: number; sha256: string }[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    return tables.map((t) => {
      const h = createHash('sha256');
      let rows = 0;
      const st = db.prepare(`SELECT * FROM "${t.replaceAll('"', '""')}" ORDER BY rowid`);
      st.setReturnArrays(true);
      for (const r of st.iterate() as Iterable<unknown[]>) {
        rows++;
        h.update(JSON.stringify(r, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v)));
      }
      return { table: t, rows, sha256: h.digest('hex') };
    });
  } finally {
    db.close();
  }
}

export async function runQuickstart(_o: object, ctx: Context): Promise<QuickstartResult> {
  const catalog = ctx.catalog();
  const home = ctx.settings.home;
  const work = join(home, 'quickstart');
  mkdirSync(work, { recursive: true, mode: 0o700 });

  let pool = catalog.findPool(POOL);
  let poolCreated = false;
  const poolPath = join(home, 'quickstart-pool');
  if (!pool) {
    mkdirSync(poolPath, { recursive: true, mode: 0o700 });
    pool = (await runPoolBind({ name: POOL, type: 'local', path: poolPath, remark: 'made by dbs quickstart' }, ctx)).pool;
    poolCreated = true;
  }
  ctx.report({ type: 'quickstart.pool', name: POOL, id: pool.id, path: poolPath, created: poolCreated });

  const dbPath = join(work, 'demo.db');
  const dbCreated = !existsSync(dbPath);
  if (dbCreated) createDemo(dbPath);
  ctx.report({ type: 'quickstart.database', path: dbPath, created: dbCreated });

  let plan = catalog.findPlan(PLAN);
  let planCreated = false;
  if (!plan) {
    plan = (await runPlanCreate({ name: PLAN, source: `sqlite://${dbPath}`, pool: pool.id, keepLast: 3, remark: 'made by dbs quickstart' }, ctx)).plan;
    planCreated = true;
  }
  ctx.report({ type: 'quickstart.plan', name: PLAN, id: plan.id, created: planCreated });

  const run = await runPlanRun({ plan: plan.id }, ctx);
  const backup = runBackupList({ plan: plan.id }, ctx).find((b) => b.id === run.backup!.id)!;
  ctx.report({ type: 'quickstart.backup', backup: backup.id, rawBytes: backup.rawBytes, storedBytes: backup.storedBytes });
  ctx.report({ type: 'quickstart.listed', plan: PLAN, backups: runBackupList({ plan: plan.id }, ctx).length });

  const restoredTo = join(work, `restored-${backup.id}.db`);
  await runBackupRestore({ backup: backup.id, to: `sqlite://${restoredTo}` }, ctx);
  ctx.report({ type: 'quickstart.restored', path: restoredTo });

  const want = tableDigests(dbPath);
  const got = new Map(tableDigests(restoredTo).map((d) => [d.table, d]));
  const check = want.map((w) => ({ ...w, equal: got.get(w.table)?.sha256 === w.sha256 && got.get(w.table)?.rows === w.rows }));
  if (check.some((c) => !c.equal) || got.size !== want.length) {
    throw new DbsError('RESTORE_FAILED', `the restored database ${restoredTo} differs from ${dbPath}`, { hint: 'this is a bug in dbs; please report it' });
  }
  ctx.report({ type: 'quickstart.checked', tables: check.map((c) => ({ table: c.table, rows: c.rows })) });

  return {
    home,
    pool: { name: pool.name, id: pool.id, path: poolPath, created: poolCreated },
    database: dbPath,
    plan: { name: plan.name, id: plan.id, created: planCreated },
    backup,
    restoredTo,
    check,
    next: [
      `dbs pool bind offsite --type s3 --endpoint https://s3.example.com --bucket my-backups --access-key AK --secret-key-env S3_SECRET`,
      `dbs plan create shop --source mysql://backup@127.0.0.1:3306 --password-env DB_PW --pool ${POOL} --databases shop --every daily --at 02:30 --keep-days 14`,
      `dbs plan create cache --source redis://127.0.0.1:6379 --pool ${POOL} --type logical --every hourly --keep-last 24`,
      `dbs plan run shop && dbs backup list --plan shop`,
      `dbs backup restore BACKUP-ID --to mysql://root@127.0.0.1:3306 --password-env DB_PW --database shop:shop_copy`,
    ],
  };
}
