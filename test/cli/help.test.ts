// --help of every leaf command: an Examples section whose lines are real command lines of that
// command (only its options, its arguments, its required options); required options marked;
// global options listed once; `dbs help plan create` at any depth.
import { PassThrough } from 'node:stream';
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram, commandWord, MODULE_OF, type CliIO } from '../../src/cli.js';
import { visibleSubcommands } from '../../src/commands/complete.js';
import { dbs } from '../support/cli.js';
import { tempDir } from '../support/testbed.js';

function program(): Promise<Command> {
  const io: CliIO = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough(), env: {}, cwd: '/', signal: new AbortController().signal };
  return buildProgram(io, { exitCode: 0 });
}

interface Leaf {
  path: string[];
  cmd: Command;
}

/** Every leaf of the tree (the hidden __complete the scripts call has no --help). */
function leaves(root: Command): Leaf[] {
  const out: Leaf[] = [];
  const walk = (c: Command, path: string[]) => {
    for (const s of visibleSubcommands(c)) {
      if (s.commands.length) walk(s, [...path, s.name()]);
      else out.push({ path: [...path, s.name()], cmd: s });
    }
  };
  walk(root, []);
  return out;
}

/** Splits a command line as a POSIX shell would (quotes, no expansion). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur: string | undefined;
  let quote: string | undefined;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur = (cur ?? '') + ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      cur ??= '';
    } else if (ch === ' ') {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
    } else cur = (cur ?? '') + ch;
  }
  expect(quote, line).toBeUndefined();
  if (cur !== undefined) words.push(cur);
  return words;
}

/** The example command lines of a help text: continuation lines joined, "# ..." comments cut. */
function exampleLines(help: string): string[] {
  const m = /\nExamples:\n((?: {2}.*\n?)+)/.exec(help);
  if (!m) return [];
  const joined = m[1].trimEnd().replace(/\\\n\s+/g, '');
  return joined.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim());
}

async function helpOf(path: string[]): Promise<string> {
  const r = await dbs([...path, '--help'], { home: tempDir('home') });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

const fullTree = await program();

describe('--help of every leaf command', () => {
  const root = fullTree;
  const all = leaves(root);

  it('covers the whole tree', () => {
    expect(all.map((l) => l.path.join(' '))).toEqual(expect.arrayContaining(['plan create', 'backup restore', 'completion', 'help', 'daemon', 'catalog rebuild', 'plan pause']));
    expect(all.length).toBeGreaterThan(35);
  });

  it.each(all.map((l) => ({ name: l.path.join(' '), ...l })))('$name: Examples are real command lines of it', async ({ path, cmd }) => {
    const help = await helpOf(path);
    const lines = exampleLines(help);
    expect(lines.length, help).toBeGreaterThan(0);
    const options: Option[] = [];
    for (let c: Command | null = cmd; c; c = c.parent) options.push(...c.options);
    const byFlag = new Map(options.flatMap((o) => [o.long, o.short].filter(Boolean).map((f) => [f!, o] as const)));
    for (const line of lines) {
      const words = shellWords(line);
      expect(words.slice(0, path.length + 1), line).toEqual(['dbs', ...path]);
      const positional: string[] = [];
      const given = new Set<Option>();
      for (let i = path.length + 1; i < words.length; i++) {
        const w = words[i];
        if (w === '>') break; // a redirection ends the command (completion SHELL > FILE)
        if (w.startsWith('-')) {
          const [flag] = w.split('=');
          const o = byFlag.get(flag);
          expect(o, `${line}: ${flag} is not an option of dbs ${path.join(' ')}`).toBeDefined();
          given.add(o!);
          if ((o!.required || o!.optional) && !w.includes('=')) {
            expect(words[i + 1], `${line}: ${flag} needs a value`).toBeDefined();
            i++;
          }
        } else positional.push(w);
      }
      const args = cmd.registeredArguments;
      expect(positional.length, `${line}: arguments`).toBeGreaterThanOrEqual(args.filter((a) => a.required).length);
      if (!args.at(-1)?.variadic) expect(positional.length, `${line}: arguments`).toBeLessThanOrEqual(args.length);
      for (const o of cmd.options.filter((x) => x.mandatory)) expect(given.has(o), `${line}: ${o.long} is required`).toBe(true);
    }
  });

  it('marks required options, and lists the global options once, after the command\'s', async () => {
    const bind = await helpOf(['pool', 'bind']);
    expect(bind).toMatch(/--type <type>\s+local or s3 \(required\)/);
    expect(await helpOf(['gateway', 'create'])).toMatch(/--ip <addr>\s+an IPv4 or IPv6 address of this host \(required\)/);
    expect(await helpOf(['backup', 'copy'])).toMatch(/--to <pool>[^\n]*\(required\)/);
    const create = await helpOf(['plan', 'create']);
    expect(create).toMatch(/--pool <pool>\s+pool id or name \(required; asked on a terminal\)/);
    expect(create).not.toMatch(/--remark <text>[^\n]*required/);
    for (const h of [bind, create]) {
      const globals = h.indexOf('\nGlobal Options:\n');
      expect(globals).toBeGreaterThan(h.indexOf('\nOptions:\n'));
      for (const flag of ['--home <dir>', '--json', '--yes', '--verbose']) {
        expect(h.split(flag).length - 1, flag).toBe(1);
        expect(h.indexOf(flag)).toBeGreaterThan(globals);
      }
    }
  });
});

describe('dbs help COMMAND...', () => {
  it('shows the help of a command at any depth', async () => {
    const home = tempDir('home');
    const r = await dbs(['help', 'plan', 'create'], { home });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: dbs plan create \[options\] \[name\]/);
    expect(r.stdout).toBe(await helpOf(['plan', 'create']));
    expect((await dbs(['help', 'plan'], { home })).stdout).toMatch(/^Usage: dbs plan \[options\] \[command\]/);
    expect((await dbs(['help'], { home })).stdout).toMatch(/^Usage: dbs \[options\] \[command\]/);
    // One level down still works the commander way.
    expect((await dbs(['plan', 'help', 'create'], { home })).stdout).toBe(r.stdout);
  });

  it('an unknown command is a usage error naming what there is', async () => {
    const r = await dbs(['help', 'plan', 'nope'], { home: tempDir('home') });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/unknown command "dbs plan nope"/);
    expect(r.stderr).toMatch(/hint: dbs plan has: create, list, .*delete/);
  });
});

describe('the command tree is built lazily', () => {
  const io = (): CliIO => ({ stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough(), env: {}, cwd: '/', signal: new AbortController().signal });
  /** A command's words, options and arguments, all the way down. */
  const shape = (c: Command): unknown => ({
    name: c.name(),
    options: c.options.map((o) => o.flags),
    args: c.registeredArguments.map((a) => a.name()),
    commands: c.commands.map(shape),
  });
  const tops = fullTree.commands.map((c) => c.name()).filter((n) => !['help', 'completion', '__complete'].includes(n));

  it('knows the module of every top-level command but help and completion', () => {
    expect(tops.length).toBeGreaterThan(12);
    for (const n of tops) expect(MODULE_OF[n], n).toBeDefined();
    expect(Object.keys(MODULE_OF).sort()).toEqual([...tops].sort());
  });

  it.each(tops)('dbs %s ... registers that command exactly as the full tree has it, and only its module', async (name) => {
    const lazy = await buildProgram(io(), { exitCode: 0 }, ['--home', '/x', '--json', name, 'list']);
    const mine = lazy.commands.find((c) => c.name() === name);
    expect(mine, name).toBeDefined();
    expect(shape(mine!)).toEqual(shape(fullTree.commands.find((c) => c.name() === name)!));
    // The same module's commands and no others (e.g. quickstart brings doctor and events).
    const sameModule = tops.filter((n) => MODULE_OF[n] === MODULE_OF[name]);
    expect(lazy.commands.map((c) => c.name()).sort()).toEqual(sameModule.sort());
    expect(lazy.options.map((o) => o.flags)).toEqual(fullTree.options.map((o) => o.flags));
  });

  it('help, completion, an unknown word or no command build the whole tree', async () => {
    for (const argv of [['help', 'plan'], ['completion', 'bash'], ['__complete', 'pl'], ['plna', 'list'], [], ['--json'], ['--', 'plan']]) {
      const p = await buildProgram(io(), { exitCode: 0 }, argv);
      expect(p.commands.map(shape), argv.join(' ')).toEqual(fullTree.commands.map(shape));
    }
  });

  it('finds the command word after global options and their values', () => {
    expect(commandWord(['plan', 'list'])).toBe('plan');
    expect(commandWord(['--home', 'plan', 'backup', 'list'])).toBe('backup');
    expect(commandWord(['--config', 'c.json', '--compress', 'none', '-q', '--json', 'task'])).toBe('task');
    expect(commandWord(['--home=/h', 'pool'])).toBe('pool');
    expect(commandWord(['-y', '--no-color', '-v'])).toBeUndefined();
    expect(commandWord(['--', 'plan'])).toBeUndefined();
  });

  it('an unknown command still gets a suggestion from the whole tree', async () => {
    const r = await dbs(['plna', 'list'], { home: tempDir('home') });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'plna'/);
    expect(r.stderr).toMatch(/Did you mean plan\?/);
  });
});
