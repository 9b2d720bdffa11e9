// `dbs completion bash|zsh|fish` and the `dbs __complete` they call back: bash's completion
// function run for real (COMP_WORDS/COMP_CWORD set, the real executable called), fish's through
// `complete -C`, zsh's script parsed; names of plans and pools from a catalog, read-only.
import { chmodSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { dbs } from '../support/cli.js';
import { smallSqlite } from '../support/fixtures.js';
import { tempDir } from '../support/testbed.js';

const BIN = new URL('../../bin/dbs.js', import.meta.url).pathname;

/** A folder with a `dbs` on it that runs this checkout (the scripts call the word the user typed). */
function binDir(): string {
  const dir = tempDir('bin');
  const exe = join(dir, 'dbs');
  writeFileSync(exe, `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`);
  chmodSync(exe, 0o755);
  return dir;
}

let home: string;
let bin: string;
let script: { bash: string; zsh: string; fish: string };
const env = () => ({ PATH: `${bin}:${process.env.PATH}`, DBS_HOME: home, HOME: process.env.HOME });

beforeAll(async () => {
  home = tempDir('home');
  bin = binDir();
  expect((await dbs(['pool', 'bind', 'backups', '--type', 'local', '--path', tempDir('pool')], { home })).code).toBe(0);
  for (const name of ['shop-nightly', 'shop-hourly']) {
    const r = await dbs(['plan', 'create', name, '--source', `sqlite://${smallSqlite()}`, '--pool', 'backups'], { home });
    expect(r.code, r.stderr).toBe(0);
  }
  const get = async (shell: string) => {
    const r = await dbs(['completion', shell], { home });
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  script = { bash: await get('bash'), zsh: await get('zsh'), fish: await get('fish') };
});

/**
 * Runs bash's completion function for each command line (the cursor at its end; a trailing
 * space means an empty current word) and returns COMPREPLY of each, in one bash process.
 */
async function bashComplete(lines: string[], extraEnv: Record<string, string> = {}): Promise<string[][]> {
  const calls = lines.map((l) => {
    const words = l.split(' ');
    const quoted = words.map((w) => `'${w}'`).join(' ');
    return `COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; COMP_LINE='${l}'; COMP_POINT=${l.length}; COMPREPLY=(); _dbs_completion; printf '%s\\n' "\${COMPREPLY[@]}" | sort; echo '-----'`;
  });
  const r = await execa('bash', ['-c', `source /dev/stdin <<'DBS_EOF'\n${script.bash}\nDBS_EOF\n${calls.join('\n')}`], { env: { ...env(), ...extraEnv }, extendEnv: false, reject: false });
  expect(r.exitCode, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  const blocks: string[][] = [[]];
  for (const l of r.stdout.split('\n')) {
    if (l === '-----') blocks.push([]);
    else if (l) blocks.at(-1)!.push(l);
  }
  expect(blocks.length).toBe(lines.length + 1);
  return blocks.slice(0, lines.length);
}

describe('dbs completion bash', () => {
  it('completes commands, options of plan create, and plan and pool names from the catalog', async () => {
    const t0 = Date.now();
    const [top, group, options, names, prefixed, pools, types, none, help] = await bashComplete([
      'dbs ',
      'dbs plan ',
      'dbs plan create --',
      'dbs plan show ',
      'dbs plan run shop-n',
      'dbs plan create x --pool ',
      'dbs pool bind x --type ',
      'dbs plan show shop-nightly ',
      'dbs help pl',
    ]);
    const ms = Date.now() - t0;
    expect(top).toEqual(expect.arrayContaining(['backup', 'catalog', 'completion', 'daemon', 'help', 'plan', 'pool', 'quickstart', 'restore', 'task']));
    expect(top).not.toContain('__complete');
    expect(group).toEqual(['create', 'delete', 'history', 'list', 'monitor', 'pause', 'prune', 'resume', 'run', 'show', 'unlock', 'update']);
    expect(options).toEqual(expect.arrayContaining(['--source', '--pool', '--type', '--databases', '--every', '--keep-days', '--encrypt-to', '--remark', '--help', '--home', '--json', '--yes']));
    expect(options).not.toContain('--no-encrypt'); // plan update's, not plan create's
    expect(options.every((o) => o.startsWith('--'))).toBe(true);
    expect(names).toEqual(['shop-hourly', 'shop-nightly']);
    expect(prefixed).toEqual(['shop-nightly']);
    expect(pools).toEqual(['backups']);
    expect(types).toEqual(['local', 's3']);
    expect(none).toEqual([]); // plan show takes one plan
    expect(help).toEqual(['plan']);
    console.log(`bash completion: 9 Tabs in ${ms} ms (${Math.round(ms / 9)} ms each)`);
  });

  it('an option given is not offered again; values of a given --home are read from that catalog', async () => {
    const other = tempDir('home');
    const [again, homeGiven] = await bashComplete(['dbs plan create --pool backups --po', `dbs --home ${other} plan show `]);
    expect(again).toEqual([]);
    expect(homeGiven).toEqual([]); // a folder without a catalog: no names
    const [ours] = await bashComplete([`dbs --home ${home} plan show `], { DBS_HOME: other });
    expect(ours).toEqual(['shop-hourly', 'shop-nightly']);
  });

  it('a directory option completes directories', async () => {
    const [dirs] = await bashComplete(['dbs pool bind x --type local --path /tm']);
    expect(dirs).toEqual(['/tmp']);
  });

  it('no catalog or a broken one: no names, nothing printed, the catalog not created or changed', async () => {
    const missing = join(tempDir('home'), 'none');
    const [a] = await bashComplete(['dbs plan show '], { DBS_HOME: missing });
    expect(a).toEqual([]);
    expect(existsSync(missing)).toBe(false);
    const broken = tempDir('home');
    writeFileSync(join(broken, 'catalog.db'), 'not sqlite');
    const [b, c] = await bashComplete(['dbs plan show ', 'dbs pl'], { DBS_HOME: broken });
    expect(b).toEqual([]);
    expect(c).toEqual(['plan']);
    // The real catalog is read, never written: its file and WAL stay as they were.
    const before = statSync(join(home, 'catalog.db')).mtimeMs;
    await bashComplete(['dbs plan show ']);
    expect(statSync(join(home, 'catalog.db')).mtimeMs).toBe(before);
  });
});

describe('dbs __complete', () => {
  const complete = async (words: string[], h = home) => {
    const r = await dbs(['__complete', '--', ...words], { home: h });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const [mode, ...rest] = r.stdout.split('\n').filter(Boolean);
    return { mode, words: rest };
  };

  it('gives zsh and fish (which keep --opt=value as one word) the same candidates as bash', async () => {
    expect(await complete(['--home', home, 'plan', 'show', ''])).toEqual({ mode: 'words', words: ['shop-hourly', 'shop-nightly'] });
    expect(await complete([`--home=${home}`, 'plan', 'run', 'shop-h'])).toEqual({ mode: 'words', words: ['shop-hourly'] });
    expect(await complete(['--home', home, 'plan', 'create', 'x', '--pool=b'])).toEqual({ mode: 'words', words: ['--pool=backups'] });
    // bash splits it: "--pool" "=" "b"
    expect(await complete(['--home', home, 'plan', 'create', 'x', '--pool', '=', 'b'])).toEqual({ mode: 'words', words: ['backups'] });
    expect(await complete(['--home', '=', home, 'plan', 'create', 'x', '--pool', '='])).toEqual({ mode: 'words', words: ['=backups'] });
    expect(await complete(['backup', 'restore', 'x', '--identity-file', ''])).toEqual({ mode: 'files', words: [] });
    expect(await complete(['completion', ''])).toEqual({ mode: 'words', words: ['bash', 'zsh', 'fish'] });
    expect(await complete(['--help'])).toEqual({ mode: 'words', words: ['--help'] });
  });
});

describe('dbs completion zsh|fish', () => {
  it('zsh: the script parses, and _dbs offers what __complete gives (compadd and _files stubbed)', async () => {
    const r = await execa('zsh', ['-n'], { input: script.zsh, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(script.zsh).toMatch(/^#compdef dbs\n/);
    const file = join(tempDir('zsh'), '_dbs');
    writeFileSync(file, script.zsh);
    // Outside a completion widget `words` and CURRENT are plain variables: set them as zsh would.
    const calls = [
      ['dbs', 'plan', 'show', ''],
      ['dbs', 'plan', 'create', 'x', '--pool', ''],
      ['dbs', 'pool', 'bind', 'x', '--path', ''],
    ].map((w) => `words=(${w.map((x) => `'${x}'`).join(' ')}); CURRENT=${w.length}; _dbs; print -- -----`);
    const z = await execa('zsh', ['-fc', `compdef() { print "compdef $*" }; compadd() { shift; print -l -- "$@" }; _files() { print "FILES $*" }; source ${file}; ${calls.join('; ')}`], { env: env(), extendEnv: false, reject: false });
    expect(z.exitCode, z.stderr).toBe(0);
    expect(z.stdout.split('\n')).toEqual(['compdef _dbs dbs', 'shop-hourly', 'shop-nightly', '-----', 'backups', '-----', 'FILES -/', '-----']);
  });

  it('fish: the script parses, and `complete -C` offers the names bash offers', async () => {
    const file = join(tempDir('fish'), 'dbs.fish');
    writeFileSync(file, script.fish);
    const n = await execa('fish', ['-n', file], { reject: false });
    expect(n.exitCode, n.stderr).toBe(0);
    const run = async (line: string) => {
      const r = await execa('fish', ['--no-config', '-c', `source ${file}; complete -C '${line}'`], { env: env(), extendEnv: false, reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
      return r.stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0]).sort();
    };
    expect(await run('dbs plan show ')).toEqual(['shop-hourly', 'shop-nightly']);
    expect(await run('dbs plan create --pool ')).toEqual(['backups']);
    expect(await run('dbs plan create --pool=')).toEqual(['--pool=backups']);
    expect(await run('dbs pl')).toEqual(['plan']);
  });

  it('another shell is a usage error with a hint', async () => {
    const r = await dbs(['completion', 'tcsh'], { home });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/no completion for the shell "tcsh"/);
    expect(r.stderr).toMatch(/hint: choose one of: bash, zsh, fish/);
    const j = await dbs(['--json', 'completion', 'bash'], { home });
    expect(j.json()).toMatchObject({ shell: 'bash', script: expect.stringContaining('complete -F _dbs_completion dbs') });
  });
});
