// Plan state from the last result (available / failed / paused / unavailable) and the plan's
// history (every execution: when, the request as asked, the result, success), with real runs
// of a SQLite plan into a local pool (no server needed).
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { dbs } from '../support/cli.js';
import { tempDir } from '../support/testbed.js';

describe('plan state and history', () => {
  it('follows the last result, and the history keeps every execution with its request and outcome', async () => {
    const home = tempDir('home');
    const pool = join(tempDir('pool'), 'p');
    mkdirSync(pool);
    const dir = tempDir('app');
    const path = join(dir, 'app.db');
    const make = () => {
      const db = new Database(path);
      db.exec('CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES (hex(randomblob(64)));');
      db.close();
    };
    make();
    const run = (args: string[]) => dbs(args, { home });
    expect((await run(['pool', 'bind', 'p', '--type', 'local', '--path', pool])).code).toBe(0);
    const created = await run(['plan', 'create', 'app', '--source', `sqlite://${path}`, '--pool', 'p', '--every', 'daily', '--at', '02:30']);
    expect(created.code, created.stderr).toBe(0);
    const state = async () => {
      const r = await run(['--json', 'plan', 'list']);
      expect(r.code, r.stderr).toBe(0);
      return r.json()[0] as { state: string; lastRun: { status: string; result: string } | null };
    };
    expect(await state()).toMatchObject({ state: 'available', lastRun: null });

    const ok = await run(['--json', 'plan', 'run', 'app']);
    expect(ok.code, ok.stderr).toBe(0);
    const first = ok.json().backup.id as string;
    expect(await state()).toMatchObject({ state: 'available', lastRun: { status: 'succeeded', result: first } });

    rmSync(path);
    const failed = await run(['plan', 'run', 'app']);
    expect(failed.code).not.toBe(0);
    const s = await state();
    expect(s.state).toBe('failed');
    expect(s.lastRun).toMatchObject({ status: 'failed' });
    const human = await dbs(['plan', 'list'], { home, env: { COLUMNS: '80' } });
    expect(human.stdout.split('\n')[1]).toMatch(/^app\s+failed\s/);
    expect(Math.max(...human.stdout.trimEnd().split('\n').map((l) => l.length))).toBeLessThanOrEqual(80);

    make();
    const again = await run(['--json', 'plan', 'run', 'app']);
    expect(again.code, again.stderr).toBe(0);
    expect((await state()).state).toBe('available');

    const hist = await run(['--json', 'plan', 'history', 'app']);
    expect(hist.code, hist.stderr).toBe(0);
    const h = hist.json() as { success: boolean; backupId: string | null; error: { code: string } | null; trigger: string; request: { backupType: string; source: string }; queuedAt: string }[];
    expect(h.map((x) => x.success)).toEqual([true, false, true]);
    expect(h.map((x) => x.backupId)).toEqual([again.json().backup.id, null, first]);
    expect(h[1].error?.code).toBe('SOURCE_NOT_FOUND');
    for (const x of h) expect(x).toMatchObject({ trigger: 'manual', request: { backupType: 'snapshot', source: `sqlite://${path}` } });
    expect(h.map((x) => x.queuedAt)).toEqual([...h.map((x) => x.queuedAt)].sort().reverse());
    const failedOnly = await run(['--json', 'plan', 'history', 'app', '--status', 'failed']);
    expect(failedOnly.json().map((x: { success: boolean }) => x.success)).toEqual([false]);
    const table = await dbs(['plan', 'history', 'app'], { home, env: { COLUMNS: '80' } });
    expect(table.stdout.split('\n')[0]).toMatch(/^ASKED\s+TRIGGER\s+OK\s+RESULT/);
    expect(table.stdout).toContain(first);
    expect((await run(['plan', 'history', 'nope'])).code).toBe(3);
    expect((await run(['plan', 'history', 'app', '--status', 'great'])).code).toBe(2);

    expect((await run(['plan', 'pause', 'app'])).code).toBe(0);
    expect((await state()).state).toBe('paused');
    expect((await run(['plan', 'resume', 'app'])).code).toBe(0);

    renameSync(pool, `${pool}-gone`);
    expect((await run(['plan', 'run', 'app'])).code).not.toBe(0);
    const off = await run(['--json', 'plan', 'list']);
    expect(off.json()[0].state).toBe('unavailable');
    expect((await run(['plan', 'list'])).stdout).toMatch(/unavailable \(pool p offline\)/);
  });
});
