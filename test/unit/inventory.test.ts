// The inventory lists (backup/task/restore list): filters, paging, grouping, streaming JSON,
// tables that fit, sizes in their units, and the indexes of migration 8. A catalog filled
// directly (no server needed): what the lists return is compared with what was inserted.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
// The catalog's SQLite (node:sqlite): a second SQLite library must not open a file dbs has open
// in this process (src/store/sqlite.ts).
import { Db as Database } from '../../src/store/sqlite.js';
import { Catalog } from '../../src/store/catalog.js';
import { migrations } from '../../src/store/migrations.js';
import { fmtBytes, table } from '../../src/output/format.js';
import { parseDuration } from '../../src/core/durations.js';
import { dbs } from '../support/cli.js';
import { tempDir } from '../support/testbed.js';

interface B {
  id: string;
  plan: string;
  planId: string;
  pool: string;
  type: string;
  status: string;
  endedAt: string;
  raw: number;
  stored: number;
}

const N = 130;
const T0 = Date.parse('2026-06-01T00:00:00Z');
let home: string;
const backups: B[] = [];
const tasks: { id: string; plan: string; status: string; queuedAt: string; backupId: string | null; pool: string; type: string }[] = [];

beforeAll(() => {
  home = join(tempDir('inv'), 'home');
  mkdirSync(home, { mode: 0o700 });
  const c = Catalog.open(home);
  c.insertPool({ id: 'pool-aaaaaaaaaa', name: 'disk', type: 'local', config: { path: '/x' }, remark: '' });
  c.insertPool({ id: 'pool-bbbbbbbbbb', name: 'far', type: 'local', config: { path: '/y' }, remark: '' });
  const plans = [
    { id: 'plan-0000000001', name: 'shop', type: 'logical', pool: 'pool-aaaaaaaaaa' },
    { id: 'plan-0000000002', name: 'phys', type: 'physical', pool: 'pool-bbbbbbbbbb' },
    { id: 'plan-0000000003', name: 'cache', type: 'snapshot', pool: 'pool-aaaaaaaaaa' },
  ];
  for (const p of plans) {
    c.insertPlan({ id: p.id, name: p.name, status: 'active', pauseReason: '', sourceKind: 'mysql', source: { url: 'mysql://root@h:3306' }, backupType: p.type, selection: {}, poolId: p.pool, schedule: { kind: 'manual' }, retention: { keepLast: 1000 }, compression: 'zstd', options: {}, remark: '' });
  }
  c.transaction(() => {
    for (let i = 0; i < N; i++) {
      const p = plans[i % 3];
      // Two backups share each end time (ties are ordered by id, so paging must not lose one).
      const end = new Date(T0 + Math.floor(i / 2) * 3_600_000).toISOString();
      const id = `b-${String(i).padStart(4, '0')}`;
      const b: B = { id, plan: p.name, planId: p.id, pool: p.pool, type: p.type, status: i % 17 === 0 ? 'missing' : 'available', endedAt: end, raw: 1_048_576 * (i + 1), stored: 1000 * (i + 1) };
      backups.push(b);
      c.insertBackup({ id, planId: p.id, planName: p.name, taskId: `task-${i}`, poolId: p.pool, status: b.status as 'available', sourceKind: 'mysql', backupType: p.type, parentId: null, rawBytes: b.raw, storedBytes: b.stored, startedAt: end, endedAt: end, manifest: { big: 'x'.repeat(100) } });
      const failed = i % 10 === 3;
      tasks.push({ id: `task-${String(i).padStart(4, '0')}`, plan: p.name, status: failed ? 'failed' : 'succeeded', queuedAt: end, backupId: failed ? null : id, pool: p.pool, type: p.type });
      c.insertTask({ id: `task-${String(i).padStart(4, '0')}`, planId: p.id, planName: p.name, trigger: i % 2 ? 'schedule' : 'manual', status: failed ? 'failed' : 'succeeded', queuedAt: end, startedAt: end, endedAt: new Date(Date.parse(end) + 90_000).toISOString(), backupId: failed ? null : id, errorCode: failed ? 'BACKUP_FAILED' : null, poolId: p.pool, backupType: p.type });
    }
    c.insertRestore({ id: 'restore-1', backupId: 'b-0001', planId: plans[1].id, status: 'succeeded', target: 'mysql://root@t:3306', options: {}, startedAt: new Date(T0).toISOString(), endedAt: new Date(T0 + 5000).toISOString() });
    c.insertRestore({ id: 'restore-2', backupId: 'b-0003', planId: plans[0].id, status: 'failed', target: 'mysql://root@t:3306', options: {}, startedAt: new Date(T0 + 1000).toISOString() });
  });
  c.close();
});

const newestFirst = (xs: B[]) => [...xs].sort((a, b) => (a.endedAt === b.endedAt ? (a.id < b.id ? 1 : -1) : a.endedAt < b.endedAt ? 1 : -1));
const run = (args: string[], env: NodeJS.ProcessEnv = {}) => dbs(args, { home, env });
const ids = (r: { json(): { id: string }[] }) => r.json().map((x) => x.id);

describe('backup list', () => {
  it('--json streams every backup newest first as one JSON array; a person gets a page of 50 and how to page on', async () => {
    const all = await run(['--json', 'backup', 'list']);
    expect(all.code, all.stderr).toBe(0);
    expect(ids(all)).toEqual(newestFirst(backups).map((b) => b.id));
    expect(all.json()[0]).not.toHaveProperty('manifest');
    expect(all.json()[0]).toMatchObject({ poolName: expect.any(String), rawBytes: expect.any(Number) });
    const human = await run(['backup', 'list']);
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.trim().split('\n');
    expect(lines).toHaveLength(51);
    const last = newestFirst(backups)[49].id;
    expect(human.stderr).toContain(`50 shown; more match: the same command with --before ${last} shows the next page`);
    expect((await run(["backup", "list", "--limit", String(N)])).stderr).toBe("");
  });

  it('pages with --before and --offset without losing or repeating a backup (ties on the end time included)', async () => {
    const seen: string[] = [];
    let before: string | undefined;
    for (;;) {
      const r = await run(['--json', 'backup', 'list', '--limit', '7', ...(before ? ['--before', before] : [])]);
      expect(r.code, r.stderr).toBe(0);
      const page = ids(r);
      if (!page.length) break;
      seen.push(...page);
      before = page.at(-1);
    }
    expect(seen).toEqual(newestFirst(backups).map((b) => b.id));
    const off = await run(['--json', 'backup', 'list', '--offset', '50', '--limit', '10']);
    expect(ids(off)).toEqual(newestFirst(backups).slice(50, 60).map((b) => b.id));
  });

  it('filters by plan, pool, type, status, since and until, alone and together', async () => {
    const since = new Date(T0 + 20 * 3_600_000).toISOString();
    const until = new Date(T0 + 40 * 3_600_000).toISOString();
    const cases: [string[], (b: B) => boolean][] = [
      [['--plan', 'phys'], (b) => b.plan === 'phys'],
      [['--plan', 'plan-0000000001'], (b) => b.plan === 'shop'],
      [['--pool', 'disk'], (b) => b.pool === 'pool-aaaaaaaaaa'],
      [['--type', 'snapshot'], (b) => b.type === 'snapshot'],
      [['--status', 'missing'], (b) => b.status === 'missing'],
      [['--since', since, '--until', until], (b) => b.endedAt >= since && b.endedAt <= until],
      [['--pool', 'disk', '--status', 'available', '--since', since], (b) => b.pool === 'pool-aaaaaaaaaa' && b.status === 'available' && b.endedAt >= since],
    ];
    for (const [flags, keep] of cases) {
      const r = await run(['--json', 'backup', 'list', ...flags]);
      expect(r.code, `${flags.join(' ')}: ${r.stderr}`).toBe(0);
      const want = newestFirst(backups.filter(keep)).map((b) => b.id);
      expect(want.length).toBeGreaterThan(0);
      expect(ids(r), flags.join(' ')).toEqual(want);
    }
    // An age: every backup here is months old, so --since 1h matches none.
    expect((await run(['--json', 'backup', 'list', '--since', '1h'])).json()).toEqual([]);
  });

  it('--group-by plan|pool|type|day counts and sums what matches', async () => {
    for (const by of ['plan', 'pool', 'type', 'day'] as const) {
      const r = await run(['--json', 'backup', 'list', '--group-by', by, '--status', 'available']);
      expect(r.code, r.stderr).toBe(0);
      const avail = backups.filter((b) => b.status === 'available');
      const key = (b: B) => (by === 'plan' ? b.plan : by === 'pool' ? (b.pool === 'pool-aaaaaaaaaa' ? 'disk' : 'far') : by === 'type' ? `mysql ${b.type}` : localDay(b.endedAt));
      const want = new Map<string, { count: number; rawBytes: number; storedBytes: number }>();
      for (const b of avail) {
        const g = want.get(key(b)) ?? { count: 0, rawBytes: 0, storedBytes: 0 };
        want.set(key(b), { count: g.count + 1, rawBytes: g.rawBytes + b.raw, storedBytes: g.storedBytes + b.stored });
      }
      const got = r.json().groups as { key: string; count: number; rawBytes: number; storedBytes: number }[];
      expect(new Map(got.map((g) => [g.key, { count: g.count, rawBytes: g.rawBytes, storedBytes: g.storedBytes }]))).toEqual(want);
    }
  });

  it('bad filters are usage errors naming the flag (nothing is listed)', async () => {
    const bad: [string[], number, RegExp][] = [
      [['--status', 'gone'], 2, /--status "gone" is not one of available, deleting, missing/],
      [['--type', 'fancy'], 2, /--type "fancy" is not one of/],
      [['--since', 'yesterdayish'], 2, /--since "yesterdayish" is neither an age nor a time/],
      [['--since', '5 parsecs'], 2, /--since "5 parsecs" is not a duration/],
      [['--since', '2026-07-01', '--until', '2026-06-01'], 2, /--since .* is after --until/],
      [['--group-by', 'colour'], 2, /--group-by "colour" is not one of plan, pool, type, day/],
      [['--group-by', 'plan', '--limit', '3'], 2, /--group-by cannot be combined/],
      [['--before', 'b-0001', '--offset', '3'], 2, /--before and --offset are exclusive/],
      [['--before', 'b-nope'], 3, /--before "b-nope": no such backup/],
      [['--plan', 'nope'], 3, /plan "nope" not found/],
      [['--pool', 'nope'], 3, /pool "nope" not found/],
      [['--limit', '0'], 2, /--limit "0" must be a whole number from 1/],
    ];
    for (const [flags, code, msg] of bad) {
      const r = await run(['backup', 'list', ...flags]);
      expect(r.code, flags.join(' ')).toBe(code);
      expect(r.stderr, flags.join(' ')).toMatch(msg);
      expect(r.stdout, flags.join(' ')).toBe('');
    }
  });
});

describe('task list and restore list', () => {
  it('task list filters like backup list and shows end time, duration, trigger and result', async () => {
    const r = await run(['--json', 'task', 'list', '--status', 'failed', '--pool', 'far']);
    expect(r.code, r.stderr).toBe(0);
    const want = tasks.filter((t) => t.status === 'failed' && t.pool === 'pool-bbbbbbbbbb');
    expect(want.length).toBeGreaterThan(0);
    expect(r.json().map((t: { id: string }) => t.id).sort()).toEqual(want.map((t) => t.id).sort());
    expect(r.json()[0]).toMatchObject({ result: 'BACKUP_FAILED', durationMs: 90_000, endedAt: expect.any(String) });
    const typed = await run(['--json', 'task', 'list', '--type', 'physical', '--limit', '1000']);
    expect(typed.json().length).toBe(tasks.filter((t) => t.type === 'physical').length);
    const human = await run(['task', 'list', '--plan', 'shop', '--limit', '3']);
    expect(human.stdout.split('\n')[0]).toMatch(/^TASK\s+PLAN\s+STATUS\s+RESULT\s+STARTED\s+ENDED\s+DURATION\s+TRIGGER/);
    expect(human.stdout).toMatch(/1m 30s/);
    expect((await run(['task', 'list', '--status', 'done'])).code).toBe(2);
  });

  it('restore list filters by status, plan, pool and type of the restored backup', async () => {
    expect(ids(await run(['--json', 'restore', 'list']))).toEqual(['restore-2', 'restore-1']);
    expect(ids(await run(['--json', 'restore', 'list', '--status', 'failed']))).toEqual(['restore-2']);
    expect(ids(await run(['--json', 'restore', 'list', '--pool', 'far']))).toEqual(['restore-1']);
    expect(ids(await run(['--json', 'restore', 'list', '--type', 'logical']))).toEqual(['restore-2']);
    expect(ids(await run(['--json', 'restore', 'list', '--plan', 'phys']))).toEqual(['restore-1']);
    expect((await run(['restore', 'list', '--status', 'queued'])).code).toBe(2);
  });
});

describe('task list and restore list --group-by', () => {
  it('task list --group-by plan|pool|type|day|status|trigger counts and sums the tasks that match', async () => {
    const trig = (i: number) => (i % 2 ? 'schedule' : 'manual');
    for (const by of ['plan', 'pool', 'type', 'day', 'status', 'trigger'] as const) {
      const r = await run(['--json', 'task', 'list', '--group-by', by, '--since', '2026-06-02']);
      expect(r.code, r.stderr).toBe(0);
      const since = Date.parse(new Date(2026, 5, 2).toISOString());
      const want = new Map<string, number>();
      tasks.forEach((t, i) => {
        if (Date.parse(t.queuedAt) < since) return;
        const k = by === 'plan' ? t.plan : by === 'pool' ? (t.pool === 'pool-aaaaaaaaaa' ? 'disk' : 'far') : by === 'type' ? t.type : by === 'day' ? localDay(t.queuedAt) : by === 'status' ? t.status : trig(i);
        want.set(k, (want.get(k) ?? 0) + 1);
      });
      expect(want.size, by).toBeGreaterThan(1);
      const got = r.json().groups as { key: string; count: number }[];
      expect(new Map(got.map((g) => [g.key, g.count])), by).toEqual(want);
    }
    // Sizes: the sums of the tasks' stored bytes (failed tasks have none here).
    const s = await run(['--json', 'task', 'list', '--group-by', 'status']);
    const ok = (s.json().groups as { key: string; storedBytes: number }[]).find((g) => g.key === 'succeeded')!;
    expect(ok.storedBytes).toBe(0);
    const human = await run(['task', 'list', '--group-by', 'trigger']);
    expect(human.stdout).toMatch(/TRIGGER\s+TASKS\s+RAW\s+STORED/);
    expect(human.stdout).toMatch(/manual\s+65\b/);
  });

  it('restore list --group-by plan|pool|type|day|status counts restores and the bytes restored', async () => {
    const r = await run(['--json', 'restore', 'list', '--group-by', 'status']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().groups).toEqual([
      { key: 'failed', count: 1, bytes: 0, oldest: expect.any(String), newest: expect.any(String) },
      { key: 'succeeded', count: 1, bytes: 0, oldest: expect.any(String), newest: expect.any(String) },
    ]);
    const byPlan = await run(['--json', 'restore', 'list', '--group-by', 'plan']);
    expect((byPlan.json().groups as { key: string }[]).map((g) => g.key)).toEqual(['phys', 'shop']);
    const byPool = await run(['--json', 'restore', 'list', '--group-by', 'pool', '--status', 'succeeded']);
    expect(byPool.json().groups).toMatchObject([{ key: 'far', count: 1 }]);
    const byType = await run(['--json', 'restore', 'list', '--group-by', 'type']);
    expect((byType.json().groups as { key: string }[]).map((g) => g.key)).toEqual(['mysql logical', 'mysql physical']);
    const none = await run(['restore', 'list', '--group-by', 'day', '--since', '1h']);
    expect(none.stdout.trim()).toBe('no restores');
  });

  it('bad --group-by, --since and paging flags are usage errors for every list, and write nothing', async () => {
    const before = readFileSync(join(home, 'catalog.db'));
    const lists: [string, string][] = [
      ['task', 'plan, pool, type, day, status, trigger'],
      ['restore', 'plan, pool, type, day, status'],
    ];
    for (const [list, allowed] of lists) {
      const bad: [string[], number, RegExp][] = [
        [['--group-by', 'colour'], 2, new RegExp(`--group-by "colour" is not one of ${allowed}`)],
        [['--group-by', ''], 2, /--group-by "" is not one of/],
        [['--group-by', 'plan', '--limit', '3'], 2, /--group-by cannot be combined/],
        [['--group-by', 'plan', '--offset', '3'], 2, /--group-by cannot be combined/],
        [['--group-by', 'plan', '--before', 'x'], 2, /--group-by cannot be combined/],
        [['--group-by', 'day', '--since', 'yesterdayish'], 2, /--since "yesterdayish" is neither an age nor a time/],
        [['--group-by', 'day', '--until', '5 parsecs'], 2, /--until "5 parsecs" is not a duration/],
        [['--group-by', 'day', '--since', '2026-07-01', '--until', '2026-06-01'], 2, /--since .* is after --until/],
        [['--group-by', 'plan', '--plan', 'nope'], 3, /plan "nope" not found/],
        [['--group-by', 'plan', '--pool', 'nope'], 3, /pool "nope" not found/],
        [['--group-by', 'plan', '--status', 'gone'], 2, /--status "gone" is not one of/],
      ];
      for (const [flags, code, msg] of bad) {
        const r = await run([list, 'list', ...flags]);
        const what = `${list} list ${flags.join(' ')}`;
        expect(r.code, what).toBe(code);
        expect(r.stderr, what).toMatch(msg);
        expect(r.stdout, what).toBe('');
      }
    }
    expect(readFileSync(join(home, 'catalog.db')).equals(before)).toBe(true);
  });
});

describe('tables and sizes', () => {
  it('tables fit COLUMNS=80: borderless, the first columns kept, wider terminals get more', async () => {
    const narrow = await run(['backup', 'list'], { COLUMNS: '80' });
    const lines = narrow.stdout.trimEnd().split('\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(lines[0]).toMatch(/^BACKUP\s+PLAN\s+ENDED\s+STORED/);
    expect(narrow.stdout).not.toMatch(/[│─┌]/);
    const wide = await run(['backup', 'list'], { COLUMNS: '200' });
    expect(wide.stdout.split('\n')[0]).toMatch(/RATIO$/);
    expect(table(['A', 'B'], [['x'.repeat(30), 'y']], 20).split('\n')[1]).toBe(`${'x'.repeat(19)}…`);
  });

  it('sizes are in the units they name (KiB = 2^10, MiB = 2^20)', () => {
    expect(fmtBytes(0)).toBe('0 B');
    expect(fmtBytes(1023)).toBe('1023 B');
    expect(fmtBytes(1024)).toBe('1.0 KiB');
    expect(fmtBytes(1_048_576)).toBe('1.0 MiB');
    expect(fmtBytes(1_048_575)).toBe('1.0 MiB');
    expect(fmtBytes(1_500_000_000)).toBe('1.4 GiB');
    expect(fmtBytes(null)).toBe('-');
  });

  it('durations need a unit', () => {
    expect(parseDuration('26h', '--x')).toBe(26 * 3_600_000);
    expect(parseDuration('1h30m', '--x')).toBe(90 * 60_000);
    expect(() => parseDuration('26', '--x')).toThrow(/not a duration/);
    expect(() => parseDuration('-1h', '--x')).toThrow(/not a duration/);
  });
});

describe('migration 8 indexes', () => {
  it('every list query reads an index in order (no sort of all rows) and pages without the manifest column', () => {
    const c = Catalog.open(home);
    try {
      const plan = (sql: string) => (c.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join('; ');
      const queries = [
        'SELECT t.id FROM backups t ORDER BY t.ended_at DESC, t.id DESC LIMIT 50',
        "SELECT t.id FROM backups t WHERE t.plan_id = 'x' ORDER BY t.ended_at DESC, t.id DESC LIMIT 50",
        "SELECT t.id FROM backups t WHERE t.pool_id = 'x' ORDER BY t.ended_at DESC, t.id DESC LIMIT 50",
        "SELECT t.id FROM tasks t WHERE t.status = 'failed' ORDER BY t.queued_at DESC, t.id DESC LIMIT 50",
        'SELECT t.id FROM tasks t ORDER BY t.queued_at DESC, t.id DESC LIMIT 50',
        'SELECT t.id FROM restores t ORDER BY t.started_at DESC, t.id DESC LIMIT 50',
      ];
      for (const q of queries) expect(plan(q), q).toMatch(/USING (COVERING )?INDEX/);
      expect(plan(queries[0])).not.toMatch(/TEMP B-TREE FOR ORDER BY/);
      expect(plan(queries[4])).not.toMatch(/TEMP B-TREE FOR ORDER BY/);
    } finally {
      c.close();
    }
  });
});

describe('migration 8 on an older catalog', () => {
  it('gives old tasks the pool and type of their backup, or else of their plan', () => {
    const old = join(tempDir('old'), 'home');
    mkdirSync(old, { mode: 0o700 });
    const db = new Database(join(old, 'catalog.db'));
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    for (const m of migrations.filter((x) => x.version < 8)) {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, '2026-01-01T00:00:00Z');
    }
    const T = '2026-01-01T00:00:00.000Z';
    db.prepare("INSERT INTO pools (id, name, type, config, created_at, updated_at) VALUES ('pool-a', 'a', 'local', '{}', ?, ?), ('pool-b', 'b', 'local', '{}', ?, ?)").run(T, T, T, T);
    db.prepare("INSERT INTO plans (id, name, source_kind, source, backup_type, selection, pool_id, schedule, retention, compression, created_at, updated_at) VALUES ('plan-x', 'x', 'mysql', '{}', 'physical', '{}', 'pool-a', '{}', '{}', 'zstd', ?, ?)").run(T, T);
    // The plan moved to pool-a after its backup went to pool-b: the task keeps pool-b.
    db.prepare("INSERT INTO backups (id, plan_id, plan_name, pool_id, source_kind, backup_type, raw_bytes, stored_bytes, started_at, ended_at, manifest) VALUES ('b-1', 'plan-x', 'x', 'pool-b', 'mysql', 'logical', 1, 1, ?, ?, '{}')").run(T, T);
    db.prepare("INSERT INTO tasks (id, plan_id, plan_name, trigger, status, queued_at, backup_id) VALUES ('task-1', 'plan-x', 'x', 'manual', 'succeeded', ?, 'b-1'), ('task-2', 'plan-x', 'x', 'manual', 'failed', ?, NULL)").run(T, T);
    db.close();
    const c = Catalog.open(old);
    try {
      expect([c.getTask('task-1'), c.getTask('task-2')].map((t) => [t?.poolId, t?.backupType, t?.request])).toEqual([
        ['pool-b', 'logical', null],
        ['pool-a', 'physical', null],
      ]);
    } finally {
      c.close();
    }
  });
});

function localDay(iso: string): string {
  const d = new Date(iso);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}
