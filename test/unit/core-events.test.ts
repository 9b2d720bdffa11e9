// Core runs without a terminal: use cases get the core context (no Output, no Prompter), report
// typed events and take decisions as input; the command side renders them (commands/report.ts).
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { askUser, renderEvent } from '../../src/commands/report.js';
import { loadSettings } from '../../src/config.js';
import { makeCoreContext, type OwnedContext } from '../../src/core/context.js';
import type { CoreEvent, Question } from '../../src/core/events.js';
import { runQuickstart } from '../../src/core/quickstart.js';
import { runBackupRestore } from '../../src/core/restore.js';
import { DbsError } from '../../src/errors.js';
import { Output } from '../../src/output/output.js';
import type { Prompter } from '../../src/output/prompt.js';
import { systemClock } from '../../src/store/catalog.js';
import { tempDir } from '../support/testbed.js';

const open: OwnedContext[] = [];
afterEach(() => {
  for (const c of open.splice(0)) c.close();
});

async function coreContext(home: string, o: { yes?: boolean } = {}): Promise<{ ctx: OwnedContext; events: CoreEvent[] }> {
  const events: CoreEvent[] = [];
  const settings = await loadSettings({ flags: { home }, env: {}, cwd: home });
  const ctx = makeCoreContext({ settings, signal: new AbortController().signal, clock: systemClock, env: {}, cwd: home, yes: Boolean(o.yes), report: (e) => events.push(e) });
  open.push(ctx);
  return { ctx, events };
}

async function refusal(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DbsError) return e.code;
    throw e;
  }
  return undefined;
}

function capture(options: Partial<ConstructorParameters<typeof Output>[1]> = {}) {
  const text = { stdout: '', stderr: '' };
  const sink = (k: 'stdout' | 'stderr') => new Writable({ write: (c, _e, cb) => ((text[k] += String(c)), cb()) });
  const out = new Output({ stdout: sink('stdout'), stderr: sink('stderr') }, { json: false, quiet: false, color: false, verbose: false, ...options });
  return { out, text };
}

describe('core reports typed events instead of printing', () => {
  it('opening the catalog in a home readable by others reports home.tightened', async () => {
    const home = join(tempDir('core-events'), 'home');
    mkdirSync(home, { mode: 0o755 });
    chmodSync(home, 0o755);
    const { ctx, events } = await coreContext(home);
    ctx.catalog();
    ctx.catalog();
    expect(events).toEqual([{ type: 'home.tightened', home, from: 0o755, to: 0o700 }]);
  });

  it('quickstart reports each step as data; a second run reports reuse', async () => {
    const home = join(tempDir('core-events'), 'home');
    const first = await coreContext(home);
    const r = await runQuickstart({}, first.ctx);
    expect(first.events.map((e) => e.type)).toEqual(['quickstart.pool', 'quickstart.database', 'quickstart.plan', 'quickstart.backup', 'quickstart.listed', 'quickstart.restored', 'quickstart.checked']);
    expect(first.events).toContainEqual({ type: 'quickstart.pool', name: 'quickstart', id: r.pool.id, path: r.pool.path, created: true });
    expect(first.events).toContainEqual({ type: 'quickstart.checked', tables: [{ table: 'customers', rows: 500 }, { table: 'orders', rows: 5000 }] });
    first.ctx.close();
    const again = await coreContext(home);
    await runQuickstart({}, again.ctx);
    expect(again.events.filter((e) => 'created' in e).map((e) => [e.type, 'created' in e && e.created])).toEqual([
      ['quickstart.pool', false],
      ['quickstart.database', false],
      ['quickstart.plan', false],
    ]);
    expect(again.events).toContainEqual({ type: 'quickstart.listed', plan: 'quickstart-demo', backups: 2 });
  });

  it('restoring over the source asks a typed question; no answer or "no" refuses, "yes" goes on', async () => {
    const home = join(tempDir('core-events'), 'home');
    const { ctx } = await coreContext(home);
    const r = await runQuickstart({}, ctx);
    const input = { backup: r.backup.id, to: `sqlite://${r.database}` };
    expect(await refusal(runBackupRestore(input, ctx))).toBe('REFUSED');
    const asked: Question[] = [];
    expect(await refusal(runBackupRestore({ ...input, decide: async (q) => (asked.push(q), false) }, ctx))).toBe('REFUSED');
    expect(asked).toEqual([{ type: 'restore.over-source', backup: r.backup.id, target: `sqlite://${r.database}` }]);
    // "yes" passes the question; the existing file still needs --yes to be replaced.
    expect(await refusal(runBackupRestore({ ...input, decide: async () => true }, ctx))).toBe('ALREADY_EXISTS');
    const yes = await coreContext(home, { yes: true });
    await expect(runBackupRestore(input, yes.ctx)).resolves.toMatchObject({ status: 'succeeded' });
  });
});

describe('commands render core events through Output', () => {
  it('notices go to stderr, verbose lines only with --verbose, warnings even with --quiet', () => {
    const plain = capture();
    renderEvent(plain.out, { type: 'backup.deleted', backup: 'b-1' });
    renderEvent(plain.out, { type: 'restore.tool-output', line: 'tool says hi' });
    renderEvent(plain.out, { type: 'recovery', event: { event: 'scratch.removed', level: 'info', message: 'removed /tmp/x' } });
    renderEvent(plain.out, { type: 'recovery', event: { event: 'task.recovered', level: 'warning', message: 'task t-1 was left running' } });
    expect(plain.text).toEqual({ stdout: '', stderr: 'deleted backup b-1\nwarning: task t-1 was left running\n' });

    const verbose = capture({ verbose: true, quiet: true });
    renderEvent(verbose.out, { type: 'backup.deleted', backup: 'b-1' });
    renderEvent(verbose.out, { type: 'restore.tool-output', line: 'tool says hi' });
    renderEvent(verbose.out, { type: 'home.tightened', home: '/h', from: 0o755, to: 0o700 });
    expect(verbose.text.stderr).toBe('tool says hi\nwarning: the dbs home /h was readable by others (mode 0755); changed it to 0700: it holds passwords and keys\n');

    const json = capture({ json: true });
    renderEvent(json.out, { type: 'quickstart.restored', path: '/r.db' });
    expect(json.text).toEqual({ stdout: '', stderr: '' });
  });

  it('askUser asks the question on a terminal and answers no without one', async () => {
    const seen: string[] = [];
    const prompter = (enabled: boolean): Prompter => ({
      enabled,
      password: async () => '',
      input: async () => '',
      confirm: async (m, d) => (seen.push(`${m} [default ${d}]`), true),
    });
    const q: Question = { type: 'restore.over-source', backup: 'b-1', target: 'sqlite:///x.db' };
    expect(await askUser(prompter(false))(q)).toBe(false);
    expect(seen).toEqual([]);
    expect(await askUser(prompter(true))(q)).toBe(true);
    expect(seen).toEqual(['Restore b-1 over its own source sqlite:///x.db? [default false]']);
  });
});
