// `--group-by day` groups by UTC hour in SQL and merges hours into local days in JS (SQLite's
// per-row localtime was 0.2 s at 100k rows). The local day must be exactly SQLite's
// date(x, 'localtime'), in every kind of zone: UTC, whole-hour zones with DST, and the :30/:45
// zones and half-hour DST shifts where the merge does not apply. Each zone runs in its own
// process (the C library reads TZ once), on the compiled catalog (npm test builds dist/).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/testbed.js';

const dist = new URL('../../dist/store/catalog.js', import.meta.url);

const SCRIPT = `
const { Catalog } = await import(process.argv[1]);
const home = process.argv[2];
const c = Catalog.open(home);
c.insertPool({ id: 'pool-aaaaaaaaaa', name: 'p', type: 'local', config: { path: '/x' }, remark: '' });
c.insertPlan({ id: 'plan-aaaaaaaaaa', name: 'n', status: 'active', pauseReason: '', sourceKind: 'sqlite', source: { url: 'sqlite:///x' },
  backupType: 'snapshot', selection: {}, poolId: 'pool-aaaaaaaaaa', schedule: { kind: 'manual' }, retention: {}, compression: 'zstd', options: {}, remark: '' });
const ins = c.db.prepare("INSERT INTO tasks (id, plan_id, plan_name, trigger, status, queued_at, raw_bytes, stored_bytes) VALUES (?, 'plan-aaaaaaaaaa', 'n', 'manual', 'succeeded', ?, ?, ?)");
// Every 37 minutes over two years (DST changes both ways in both hemispheres), and a few odd seconds.
const t0 = Date.parse('2025-01-01T00:00:00Z');
c.transaction(() => {
  for (let i = 0; i < 28500; i++) {
    const at = new Date(t0 + i * 37 * 60_000 + (i % 7) * 1013).toISOString();
    ins.run('task-' + i.toString(16).padStart(10, '0'), at, i, i % 5);
  }
});
const mine = c.groupTasks({}, 'day').map((g) => [g.key, g.count, g.rawBytes, g.storedBytes, g.oldest, g.newest]);
const sqlite = c.db.prepare("SELECT date(queued_at, 'localtime') AS k, COUNT(*) AS n, SUM(raw_bytes) AS r, SUM(stored_bytes) AS s, MIN(queued_at) AS o, MAX(queued_at) AS w FROM tasks GROUP BY 1 ORDER BY 1 DESC").all()
  .map((g) => [g.k, g.n, g.r, g.s, g.o, g.w]);
c.close();
process.stdout.write(JSON.stringify({ mine, sqlite }));
`;

describe('--group-by day', () => {
  for (const tz of ['UTC', 'America/New_York', 'Europe/Berlin', 'Australia/Sydney', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/St_Johns']) {
    it(`gives SQLite's local days in ${tz}`, () => {
      expect(existsSync(dist), 'dist/ is missing: run npm run build (npm test does)').toBe(true);
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', SCRIPT, dist.href, tempDir('group-day')], { env: { ...process.env, TZ: tz }, encoding: 'utf8' });
      const { mine, sqlite } = JSON.parse(out) as { mine: unknown[][]; sqlite: unknown[][] };
      expect(sqlite.length).toBeGreaterThan(700);
      expect(mine).toEqual(sqlite);
    });
  }
});
