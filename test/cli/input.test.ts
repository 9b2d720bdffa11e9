// Bad input, for every option of a kind: options given twice, numeric options, URLs and
// identifiers, the catalog folder (--home), and control characters in human output.
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Command, Option } from 'commander';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { buildProgram, type CliIO } from '../../src/cli.js';
import { isRepeatable } from '../../src/commands/options.js';
import { dbs } from '../support/cli.js';
import { smallSqlite } from '../support/fixtures.js';
import { tempDir } from '../support/testbed.js';

const BIN = new URL('../../bin/dbs.js', import.meta.url).pathname;

interface Leaf {
  path: string[];
  cmd: Command;
}

/** Every command that has an action (leaf), with its words from the program root. */
async function leaves(): Promise<{ program: Command; leaves: Leaf[] }> {
  const io: CliIO = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough(), env: {}, cwd: '/', signal: new AbortController().signal };
  const program = await buildProgram(io, { exitCode: 0 });
  const out: Leaf[] = [];
  const walk = (c: Command, path: string[]) => {
    for (const s of c.commands) {
      if (s.name() === 'help') continue;
      if (s.commands.length) walk(s, [...path, s.name()]);
      else out.push({ path: [...path, s.name()], cmd: s });
    }
  };
  walk(program, []);
  return { program, leaves: out };
}

/** Placeholder arguments a leaf needs before its options parse (required ones only). */
function args(cmd: Command): string[] {
  return cmd.registeredArguments.filter((a) => a.required).map(() => 'x');
}

const takesValue = (o: Option) => o.required || o.optional;
const isNumeric = (o: Option) => /<(n|seconds)>/.test(o.flags);
/** A value the option accepts (numbers, choices), so only the repetition is wrong. */
function goodValue(o: Option): string[] {
  if (!takesValue(o)) return [];
  if (o.argChoices?.length || o.long === '--compress') return ['zstd']; // plan --compress shares the global's choices
  return [isNumeric(o) ? '3' : 'x'];
}
const flag = (o: Option) => o.long ?? o.short!;
const isHelp = (o: Option) => ['--help', '--version'].includes(o.long ?? '');


async function homeWithPoolAndPlan(remark?: string) {
  const home = tempDir('home');
  expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('pool')], { home })).code).toBe(0);
  const r = await dbs(['plan', 'create', 'a', '--source', `sqlite://${smallSqlite()}`, '--pool', 'p', ...(remark !== undefined ? ['--remark', remark] : [])], { home });
  expect(r.code, r.stderr).toBe(0);
  return home;
}

const tree = await leaves();

describe('an option given twice', () => {
  const { program, leaves: all } = tree;
  const cases: { argv: string[]; name: string }[] = [];
  for (const l of all) {
    for (const o of l.cmd.options) {
      // Repeatable options (--include, --path, --encrypt-to...) collect their values: given twice is right.
      if (isHelp(o) || isRepeatable(o)) continue;
      // Mandatory options (pool bind --type) once each, so only the repetition is wrong.
      const mandatory = l.cmd.options.filter((m) => m.mandatory && m !== o).flatMap((m) => [flag(m), ...goodValue(m)]);
      cases.push({ name: `${l.path.join(' ')} ${flag(o)}`, argv: [...l.path, ...args(l.cmd), ...mandatory, flag(o), ...goodValue(o), flag(o), ...goodValue(o)] });
    }
  }
  // Global options, given twice before the command.
  for (const o of program.options.filter((x) => !isHelp(x))) {
    cases.push({ name: `global ${flag(o)}`, argv: [flag(o), ...goodValue(o), flag(o), ...goodValue(o), 'pool', 'list'] });
  }

  it('the table covers every leaf command (and its options)', () => {
    expect(all.map((l) => l.path.join(' '))).toEqual(expect.arrayContaining(['backup restore', 'plan create', 'plan update', 'pool bind', 'daemon', 'events', 'task list']));
    expect(cases.length).toBeGreaterThan(100);
  });

  it.each(cases)('$name: exit 2 naming the option, nothing run', async ({ argv }) => {
    const home = tempDir('home');
    const repeated = argv.find((a, i) => a.startsWith('-') && argv.indexOf(a) !== i)!;
    const r = await dbs(argv, { home });
    expect(r.code, r.stderr).toBe(2);
    // (dbs() passes --home itself: --home given twice more is 3 times.)
    expect(r.stderr).toMatch(new RegExp(`${repeated} was given ${repeated === '--home' ? 3 : 2} times`));
    // The action never ran: no catalog was even opened.
    expect(() => statSync(join(home, 'catalog.db'))).toThrow();
  });

  it('a flag with its --no- form is refused too; --json errors are JSON', async () => {
    const home = tempDir('home');
    const r = await dbs(['--json', 'pool', 'bind', 'p', '--type', 'local', '--path', home, '--path-style', '--no-path-style'], { home });
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stderr)).toMatchObject({ type: 'error', code: 'USAGE', details: { options: ['--path-style', '--no-path-style'] } });
  });

  it('restore --database a:x --database b:y is refused, not half done', async () => {
    const home = await homeWithPoolAndPlan();
    const run = await dbs(['--json', 'plan', 'run', 'a'], { home });
    expect(run.code, run.stderr).toBe(0);
    const id = run.json().backup.id;
    const r = await dbs(['backup', 'restore', id, '--to', `sqlite://${join(tempDir('t'), 'r.db')}`, '--database', 'a:x', '--database', 'b:y'], { home });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--database was given 2 times/);
    expect((await dbs(['--json', 'restore', 'list'], { home })).json()).toEqual([]);
  });
});

describe('numeric options', () => {
  const { leaves: all } = tree;
  const numeric = all.flatMap((l) => l.cmd.options.filter(isNumeric).map((o) => ({ l, o })));
  const bad = ['abc', '-1', '', '1e3', '0x10', '99999999999999999999', '1.5.2'];
  const cases = numeric.flatMap(({ l, o }) =>
    bad.map((v) => ({ name: `${l.path.join(' ')} ${flag(o)} ${JSON.stringify(v)}`, argv: [...l.path, ...args(l.cmd), `${flag(o)}=${v}`], opt: flag(o) })),
  );

  it('the table has every numeric option of every command', () => {
    expect(numeric.map(({ l, o }) => `${l.path.join(' ')} ${flag(o)}`)).toEqual(
      expect.arrayContaining(['events --limit', 'task list --limit', 'daemon --concurrency', 'daemon --grace', 'daemon --reload', 'daemon --probe', 'plan create --keep-days', 'plan update --keep-monthly', 'backup restore --port']),
    );
  });

  it.each(cases)('$name: exit 2 naming the option', async ({ argv, opt }) => {
    const home = tempDir('home');
    const r = await dbs(['--json', ...argv], { home });
    expect(r.code, r.stderr).toBe(2);
    expect(JSON.parse(r.stderr.trim().split('\n').at(-1)!).message).toContain(opt);
  });

  it('zero where at least 1 is needed, fractions where whole numbers are', async () => {
    const home = tempDir('home');
    for (const argv of [['events', '--limit', '0'], ['task', 'list', '--limit', '2.5'], ['daemon', '--concurrency', '1.5'], ['daemon', '--concurrency', '65'], ['daemon', '--reload', '0']]) {
      const r = await dbs(argv, { home });
      expect(r.code, `${argv.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(argv[argv.length - 2]);
    }
  });

  it('a valid --limit limits', async () => {
    const home = await homeWithPoolAndPlan();
    expect((await dbs(['--json', 'events'], { home })).json().length).toBeGreaterThanOrEqual(2);
    expect((await dbs(['--json', 'events', '--limit', '1'], { home })).json().length).toBe(1);
    expect((await dbs(['--json', 'plan', 'run', 'a'], { home })).code).toBe(0);
    expect((await dbs(['--json', 'task', 'list', '--limit', '1'], { home })).json().length).toBe(1);
  });
});

describe('URLs and identifiers', () => {
  const long = 'd'.repeat(10_000);
  const cases: { name: string; source: string; extra?: string[]; match: RegExp }[] = [
    { name: 'mysql port 0', source: 'mysql://root@127.0.0.1:0', extra: ['--all-databases'], match: /port 0 is out of range/ },
    { name: 'redis port 0', source: 'redis://127.0.0.1:0', match: /port 0 is out of range/ },
    { name: 'mysql port 65536', source: 'mysql://root@127.0.0.1:65536', extra: ['--all-databases'], match: /not a URL/ },
    { name: 'mysql port abc', source: 'mysql://root@127.0.0.1:abc', extra: ['--all-databases'], match: /not a URL/ },
    { name: 'mysql database of 10,000 chars', source: 'mysql://root@127.0.0.1:3306', extra: ['--databases', long], match: /--databases: the MySQL database name "d{40}\.\.\." is not valid \(10000 characters\)/ },
    { name: 'mysql database of 65 chars', source: 'mysql://root@127.0.0.1:3306', extra: ['--databases', `ok,${'d'.repeat(65)}`], match: /MySQL database name/ },
    { name: 'mysql table of 65 chars', source: 'mysql://root@127.0.0.1:3306', extra: ['--tables', `shop.${'t'.repeat(65)}`], match: /--tables: the MySQL table name/ },
    { name: 'mysql database in --tables of 65 chars', source: 'mysql://root@127.0.0.1:3306', extra: ['--tables', `${'d'.repeat(65)}.t`], match: /--tables: the MySQL database name/ },
    { name: 'mysql database in the URL', source: `mysql://root@127.0.0.1:3306/${long}`, extra: ['--all-databases'], match: /--source: the MySQL database name/ },
    { name: 'mysql user of 81 chars', source: `mysql://${'u'.repeat(81)}@127.0.0.1:3306`, extra: ['--all-databases'], match: /user name is longer than 80/ },
    { name: 'redis db index too big in the URL', source: 'redis://127.0.0.1:6379/2147483648', match: /must be a number from 0 to 2147483647/ },
    { name: 'redis db index of 10,000 digits', source: `redis://127.0.0.1:6379/${'9'.repeat(10_000)}`, match: /must be a number from 0 to 2147483647/ },
    { name: 'redis db index negative', source: 'redis://127.0.0.1:6379/-1', match: /must be a number/ },
    { name: 'redis --databases too big', source: 'redis://127.0.0.1:6379', extra: ['--databases', '0,2147483648'], match: /--databases: the redis database "2147483648"/ },
    { name: 'host name of 300 chars', source: `redis://${'h'.repeat(300)}:6379`, match: /host name is longer than 253/ },
  ];

  it.each(cases)('plan create: $name -> exit 2, no plan', async ({ source, extra, match }) => {
    const home = tempDir('home');
    expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('pool')], { home })).code).toBe(0);
    const r = await dbs(['plan', 'create', 'x', '--source', source, '--pool', 'p', ...(extra ?? [])], { home });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(match);
    expect(r.stderr).toMatch(/hint: /);
    expect(r.stderr.length).toBeLessThan(1000); // the 10,000 characters are not echoed back
    expect((await dbs(['--json', 'plan', 'list'], { home })).json()).toEqual([]);
  });
});

describe('--home', () => {
  /** Runs the real binary with a hard deadline: a spin would fail the test, not hang it. */
  async function bin(home: string, ...argv: string[]) {
    const t0 = Date.now();
    const r = await execa(process.execPath, [BIN, '--home', home, ...argv], { reject: false, timeout: 15_000, killSignal: 'SIGKILL' });
    return { code: r.exitCode, stderr: String(r.stderr), ms: Date.now() - t0, timedOut: r.timedOut };
  }

  const file = join(tempDir('f'), 'a-file');
  writeFileSync(file, 'x');
  it.each([
    { home: '/proc/dbs-test/home', match: /cannot create the dbs home \/proc\/dbs-test\/home: mkdir \/proc\/dbs-test: ENOENT/ },
    { home: '/proc/self/dbs', match: /cannot create the dbs home/ },
    { home: file, match: /is not a folder/ },
    { home: join(file, 'sub'), match: /is not a folder/ },
    { home: '/dev/null', match: /is not a folder/ },
  ])('$home: fails fast with exit 2 and a clear message', async ({ home, match }) => {
    const r = await bin(home, 'pool', 'list');
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(match);
    expect(r.stderr).toMatch(/hint: choose/);
    expect(r.ms).toBeLessThan(10_000);
  });

  it('an existing folder readable by others is tightened to 0700 (catalog 0600), with a warning', async () => {
    const home = join(tempDir('h'), 'home');
    mkdirSync(home, { mode: 0o755 });
    chmodSync(home, 0o755);
    const r = await dbs(['pool', 'list'], { home });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: the dbs home .* was readable by others \(mode 0755\); changed it to 0700/);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    expect(statSync(join(home, 'catalog.db')).mode & 0o777).toBe(0o600);
    // Said once: the next run finds it private.
    const again = await dbs(['pool', 'list'], { home });
    expect(again.stderr).not.toMatch(/warning/);
  });

  it('a new home is created with its missing parents, 0700', async () => {
    const home = join(tempDir('h'), 'a', 'b', 'home');
    expect((await dbs(['pool', 'list'], { home })).code).toBe(0);
    expect(statSync(home).mode & 0o777).toBe(0o700);
  });
});

describe('control characters in human output', () => {
  const evil = 'evil\x1b]0;owned\x07\x1b[2J\rStatus: fake\nName: forged\u202e';

  it('plan show / list, events and errors escape them; --json keeps the text', async () => {
    const home = await homeWithPoolAndPlan(evil);
    const show = await dbs(['plan', 'show', 'a'], { home });
    expect(show.code).toBe(0);
    // eslint-disable-next-line no-control-regex
    expect(show.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f\u202e]/);
    expect(show.stdout).toContain('evil\\x1b]0;owned\\x07\\x1b[2J\\rStatus: fake\\nName: forged\\u202e');
    expect(show.stdout.split('\n').filter((l) => l.startsWith('Name:'))).toHaveLength(1);
    const json = await dbs(['--json', 'plan', 'show', 'a'], { home });
    expect(json.json().remark).toBe(evil);
    // A name from argv echoed in an error and in commander's own messages.
    const err = await dbs(['plan', 'show', 'no\x1b[2Jpe'], { home });
    expect(err.code).toBe(3);
    expect(err.stderr).toMatch(/plan "no.+\[2Jpe" not found/);
    // eslint-disable-next-line no-control-regex
    expect(err.stderr).not.toMatch(/\x1b/);
    const unknown = await dbs(['plan', 'show', 'a', '--x\x1b[2J'], { home });
    expect(unknown.code).toBe(2);
    // eslint-disable-next-line no-control-regex
    expect(unknown.stderr).not.toMatch(/\x1b/);
  });
});
