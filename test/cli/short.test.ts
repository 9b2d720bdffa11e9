// The fast path of the short commands (src/commands/short.ts): plan/backup/task list without
// commander. It must change how fast they start and nothing else: each argv runs both ways and
// gives the same exit code, stdout and stderr; argv the fast path does not understand
// completely goes to commander; its options are commander's options; and a short command
// run as a user runs it loads neither commander nor better-sqlite3.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import type { Command } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram, type CliIO } from '../../src/cli.js';
import { FAST_COMMANDS, FAST_GLOBALS, fastRun } from '../../src/commands/short.js';
import { isRepeatable, numberSpec } from '../../src/commands/options.js';
import { dbs } from '../support/cli.js';
import { tempDir } from '../support/testbed.js';

function find(root: Command, path: string[]): Command {
  let c = root;
  for (const w of path) c = c.commands.find((x) => x.name() === w)!;
  expect(c, path.join(' ')).toBeDefined();
  return c;
}

describe('the fast path of the short commands', () => {
  let home = '';
  beforeAll(async () => {
    home = tempDir('short-home');
    const pool = tempDir('short-pool');
    const app = join(tempDir('short-app'), 'app.db');
    const db = new Database(app);
    db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    db.close();
    for (const args of [
      ['pool', 'bind', 'p1', '--type', 'local', '--path', pool],
      ['plan', 'create', 'app', '--source', `sqlite://${app}`, '--pool', 'p1', '--every', 'daily', '--at', '02:00'],
      ['plan', 'create', 'other', '--source', `sqlite://${app}`, '--pool', 'p1', '--every', 'hourly', '--at', ':15'],
      ['plan', 'run', 'app'],
      ['plan', 'run', 'app'],
      ['plan', 'pause', 'other'],
    ]) {
      const r = await dbs(args, { home });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
  }, 60_000);

  // Each is `--home HOME` + these words (the helper puts --home first).
  const FAST: string[][] = [
    ['plan', 'list'],
    ['plan', 'list', '--json'],
    ['--json', 'plan', 'list'],
    ['plan', 'list', '--pool', 'p1'],
    ['plan', 'list', '--pool=p1', '-q'],
    ['plan', 'list', '--pool', 'nope'],
    ['-v', 'plan', 'list', '--no-color', '-y'],
    ['plan', 'list', '--config', '/nonexistent/dbs.json'],
    ['backup', 'list'],
    ['backup', 'list', '--limit', '1'],
    ['backup', 'list', '--limit=1', '--json'],
    ['backup', 'list', '--plan', 'app', '--pool', 'p1', '--type', 'snapshot', '--status', 'available', '--since', '7d'],
    ['backup', 'list', '--group-by', 'plan'],
    ['backup', 'list', '--group-by', 'day', '--json'],
    ['backup', 'list', '--offset', '1', '--limit', '5'],
    ['backup', 'list', '--since', 'garbage'],
    ['backup', 'list', '--since', 'garbage', '--json'],
    ['--json', 'plan', 'list', '--pool', 'nope'],
    ['task', 'list', '--group-by', 'bogus', '--json', '-v'],
    ['backup', 'list', '--plan', 'nope'],
    ['backup', 'list', '--before', 'nope'],
    ['task', 'list'],
    ['task', 'list', '--status', 'succeeded', '--json'],
    ['task', 'list', '--group-by', 'trigger'],
    ['task', 'list', '--group-by', 'bogus'],
    ['task', 'list', '--until', '2020-01-01'],
  ];
  // Not understood completely: commander answers (help, errors, unknown forms).
  const COMMANDER: string[][] = [
    ['plan', 'list', '--help'],
    ['plan', 'list', '-h'],
    ['plan', 'list', '--pool'],
    ['plan', 'list', '--pool', 'a', '--pool', 'b'],
    ['plan', 'list', '--bogus'],
    ['plan', 'list', 'extra'],
    ['plan', 'list', '--json=1'],
    ['plan', 'list', '--'],
    ['plan', 'list', '--json', '--json'],
    ['--pool', 'p1', 'plan', 'list'],
    ['plan', '--pool', 'p1', 'list'],
    ['-qv', 'plan', 'list'],
    ['plan', 'list', '--compress', 'zstd'],
    ['plan', 'list', '-V'],
    ['plan', 'list', '--limit', '1'],
    ['backup', 'list', '--limit', '0', '--json'],
    ['--json', 'task', 'list', '--bogus'],
    ['plan', 'show', 'app'],
    ['backup', 'list', '--limit', '0'],
    ['backup', 'list', '--limit', 'x'],
    ['backup', 'list', '--offset', '-1'],
    ['backup', 'list', '--plan', '--json'],
    ['task', 'list', '--group-by'],
    ['plan'],
    [],
  ];

  it('takes exactly the argv it understands', () => {
    for (const a of FAST) expect(fastRun(['--home', home, ...a]), a.join(' ')).toBeDefined();
    for (const a of COMMANDER) expect(fastRun(['--home', home, ...a]), a.join(' ')).toBeUndefined();
  });

  it('answers every argv as commander does: same exit code, stdout and stderr', async () => {
    const codes = new Set<number>();
    for (const a of [...FAST, ...COMMANDER]) {
      const fast = await dbs(a, { home });
      const slow = await dbs(a, { home, noFastPath: true });
      expect({ code: fast.code, stdout: fast.stdout, stderr: fast.stderr }, a.join(' ')).toEqual({ code: slow.code, stdout: slow.stdout, stderr: slow.stderr });
      codes.add(fast.code);
    }
    // The matrix holds successes, usage errors and not-found errors, not one kind only.
    expect([...codes].sort()).toEqual(expect.arrayContaining([0, 2, 3]));
    const list = await dbs(['backup', 'list', '--json'], { home });
    expect(list.json<unknown[]>()).toHaveLength(2);
  }, 120_000);

  it("its options are the commander command's options, parsed the same way", async () => {
    const io: CliIO = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough(), env: {}, cwd: '/', signal: new AbortController().signal };
    const program = await buildProgram(io, { exitCode: 0 });
    for (const [words, spec] of Object.entries(FAST_COMMANDS)) {
      const cmd = find(program, words.split(' '));
      const theirs = cmd.options.filter((o) => o.long !== '--help');
      expect(theirs.map((o) => o.long).sort(), words).toEqual(Object.keys(spec.options).sort());
      for (const o of theirs) {
        const mine = spec.options[o.long!]!;
        expect(o.short, `${words} ${o.long}`).toBeUndefined();
        expect(isRepeatable(o), `${words} ${o.long}`).toBe(false);
        expect(mine.key, `${words} ${o.long}`).toBe(o.attributeName());
        expect(mine.value === 'none' ? !o.required : o.required, `${words} ${o.long}`).toBe(true);
        expect(mine.value === 'number', `${words} ${o.long}`).toBe(numberSpec(o) !== undefined);
        if (mine.number) expect(mine.number, `${words} ${o.long}`).toEqual(numberSpec(o));
      }
    }
    // The global flags it takes are program options with the same attribute (the rest: commander).
    for (const [flag, g] of Object.entries(FAST_GLOBALS)) {
      const o = program.options.find((x) => x.long === flag || x.short === flag);
      expect(o, flag).toBeDefined();
      expect(o!.attributeName(), flag).toBe(g.key);
      expect(g.value === 'none' ? !o!.required : o!.required, flag).toBe(true);
      expect(o!.negate, flag).toBe(g.flagValue === false);
    }
  });

  it('run as a user runs it, a short command loads neither commander nor better-sqlite3', async () => {
    const dir = tempDir('short-hook');
    const log = join(dir, 'resolved.txt');
    const hook = join(dir, 'hook.mjs');
    writeFileSync(
      hook,
      `import { registerHooks } from 'node:module'; import { appendFileSync } from 'node:fs';
registerHooks({ resolve(s, c, n) { const r = n(s, c); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; } });`,
    );
    const bin = new URL('../../bin/dbs.js', import.meta.url).pathname;
    // commander is bundled (scripts/bundle.mjs): the chunks that hold it are what must not load.
    const bundle = new URL('../../dist/bundle/', import.meta.url).pathname;
    const commanderChunks = readdirSync(bundle).filter((f) => f.endsWith('.js') && /^\/\/ node_modules\/commander\//m.test(readFileSync(join(bundle, f), 'utf8')));
    expect(commanderChunks.length).toBeGreaterThan(0);
    const loadsCommander = (urls: string) => urls.includes('/commander/') || commanderChunks.some((c) => urls.includes(`/dist/bundle/${c}\n`));
    for (const words of [...Object.keys(FAST_COMMANDS).map((w) => w.split(' ')), ['plan', 'show', 'app']]) {
      writeFileSync(log, '');
      const r = await execa(process.execPath, ['--import', hook, bin, '--home', home, ...words], { reject: false, cwd: dir });
      expect(r.exitCode, `${words.join(' ')}: ${r.stderr}`).toBe(0);
      const urls = readFileSync(log, 'utf8');
      expect(urls, words.join(' ')).toContain('node:sqlite');
      if (words[1] === 'show') expect(loadsCommander(urls)).toBe(true); // the check can see commander
      else {
        expect(loadsCommander(urls), words.join(' ')).toBe(false);
        expect(urls, words.join(' ')).not.toContain('/better-sqlite3/');
      }
    }
  }, 60_000);
});
