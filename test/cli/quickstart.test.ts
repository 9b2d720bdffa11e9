// The README's first command: quickstart on a fresh home, twice (it reuses what it made).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dbs, dbsBin } from '../support/cli.js';
import { tempDir } from '../support/testbed.js';

describe('dbs quickstart', () => {
  it('backs up, restores and checks a demo SQLite database, and can run again', async () => {
    const home = tempDir('qs');
    const first = await dbs(['--json', 'quickstart'], { home });
    expect(first.code, first.stderr).toBe(0);
    const r = first.json();
    expect(r.check.length).toBe(2);
    expect(r.check.every((c: { equal: boolean }) => c.equal)).toBe(true);
    expect(r.check.find((c: { table: string }) => c.table === 'orders').rows).toBe(5000);
    expect(existsSync(r.restoredTo)).toBe(true);
    expect(r.pool.created).toBe(true);

    const second = await dbs(['--json', 'quickstart'], { home });
    expect(second.code, second.stderr).toBe(0);
    expect(second.json().pool.created).toBe(false);
    expect(second.json().plan.created).toBe(false);
    expect(second.json().backup.id).not.toBe(r.backup.id);

    const list = await dbs(['--json', 'backup', 'list', '--plan', 'quickstart-demo'], { home });
    expect(list.json()).toHaveLength(2);
    const verify = await dbs(['--json', 'backup', 'verify', r.backup.id], { home });
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.json().ok).toBe(true);
  });

  it('runs from the real binary and prints what it did', async () => {
    const home = tempDir('qs');
    const r = await dbsBin(['quickstart'], { home });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/quickstart OK: backup b-\d{8}T\d{6}Z-[0-9a-f]{4}/);
    expect(r.stdout).toMatch(/dbs plan create shop --source mysql:\/\//);
    expect(r.stderr).toMatch(/7\. checked: customers 500 rows, orders 5000 rows, every row equal/);
    expect(existsSync(join(home, 'quickstart-pool', 'dbs', 'pool.json'))).toBe(true);
  });
});
