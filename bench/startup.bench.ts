// Benchmark: start-up of short commands as CPU time (user + sys from wait4, in microseconds:
// bench/cpu-median.py; GNU time's 10 ms steps were too coarse) against `node -e 0` on the same
// Node, medians of BENCH_RUNS (default 21) in BENCH_ROUNDS (default 3) interleaved rounds.
// Target (issue 17): `dbs plan list` at most 2x `node -e 0`. CPU time, not wall time: the
// machine is shared, and CPU time is what a start-up costs whatever else runs. The first run of
// each command fills the V8 compile cache (bin/dbs.js enables it) and is not counted.
// `npm run bench:startup`.
import { execa } from 'execa';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { tempDir } from '../test/support/testbed.js';
import { median, save } from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 21);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const cpuMedian = new URL('./cpu-median.py', import.meta.url).pathname;
const node = process.execPath;
const bin = new URL('../bin/dbs.js', import.meta.url).pathname;

/** Median CPU ms of RUNS runs (after one uncounted run), from bench/cpu-median.py. */
async function cpuMs(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const r = await execa('python3', [cpuMedian, node, ...args], { env: { ...process.env, ...env, RUNS: String(RUNS) }, cwd, reject: false });
  const m = /^([\d.]+) ms/.exec(String(r.stdout));
  if (r.exitCode !== 0 || !m) throw new Error(`${args.join(' ')} failed (${r.exitCode}): ${String(r.stderr).slice(-500)}`);
  return Number(m[1]);
}

it('start-up CPU of short commands against node -e 0', async () => {
  const work = tempDir('bench-startup');
  const home = join(work, 'home');
  const pool = join(work, 'pool');
  mkdirSync(pool);
  const env = { DBS_HOME: home };
  // A catalog with a pool and a plan, as on a host that uses dbs (cwd: a folder with no config file).
  await execa(node, [bin, 'pool', 'bind', 'p', '--type', 'local', '--path', pool], { env: { ...process.env, ...env }, cwd: work });
  // (A SQLite source: a plan of the catalog itself must be encrypted since issue 18.)
  const db = join(work, 'app.db');
  await execa(node, ['-e', `new (require('better-sqlite3'))(${JSON.stringify(db)}).exec('CREATE TABLE t (x)')`], { cwd: new URL('..', import.meta.url).pathname });
  await execa(node, [bin, 'plan', 'create', 'app', '--source', `sqlite://${db}`, '--pool', 'p', '--every', 'daily', '--at', '02:00'], { env: { ...process.env, ...env }, cwd: work });
  const cases: [string, string[]][] = [
    ['node -e 0', ['-e', '0']],
    ['dbs --version', [bin, '--version']],
    ['dbs plan list', [bin, 'plan', 'list']],
    ['dbs backup list', [bin, 'backup', 'list']],
    ['dbs task list', [bin, 'task', 'list']],
  ];
  // Each round measures every case once (node -e 0 first), so a busy spell of the machine
  // shows in one round, not in one command.
  const rounds: Record<string, number>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round: Record<string, number> = {};
    for (const [name, args] of cases) round[name] = await cpuMs(args, env, work);
    rounds.push(round);
  }
  const med: Record<string, number> = {};
  for (const [name] of cases) med[name] = median(rounds.map((x) => x[name]!));
  // Instructions (valgrind's callgrind): the same count whatever else the machine does, so
  // a change of a few ms shows, which CPU-time medians on a shared VM blur (+-5 ms).
  const ir: Record<string, number> = {};
  for (const [name, args] of cases) {
    const r = await execa('valgrind', ['--tool=callgrind', '--callgrind-out-file=/dev/null', node, ...args], { env: { ...process.env, ...env }, cwd: work, reject: false });
    const m = /Collected : (\d+)/.exec(String(r.stderr));
    if (r.exitCode !== 0 || !m) throw new Error(`valgrind ${args.join(' ')} failed (${r.exitCode}): ${String(r.stderr).slice(-500)}`);
    ir[name] = Number(m[1]);
  }
  const base = med['node -e 0']!;
  // The ratio is the median of the rounds' ratios (each round's command against that round's
  // node -e 0), not the ratio of two medians taken from different rounds.
  const ratios = (k: string) => rounds.map((x) => x[k]! / x['node -e 0']!);
  const ratio = (k: string) => median(ratios(k));
  const rows = Object.entries(med).map(([k, v]) => `| ${k} | ${v.toFixed(1)} | ${ratio(k).toFixed(2)} | ${ratios(k).map((r) => r.toFixed(2)).join(', ')} | ${(ir[k]! / 1e6).toFixed(0)} | ${(ir[k]! / ir['node -e 0']!).toFixed(2)} |`);
  save('startup', [
    '# Start-up CPU (user + sys) of short commands',
    '',
    `CPU ms: median over ${ROUNDS} interleaved rounds of each round's median of ${RUNS} runs (bench/cpu-median.py, wait4 rusage); Node ${process.version}, the real binary ${node} (no wrapper process); a shared machine: CPU time, not wall time. Target: plan list <= 2.00x node -e 0.`,
    'The catalog has one pool and one daily plan (SQLite source); cwd is a folder with no config file; the compile cache is warm (one uncounted run first).',
    '',
    '| command | CPU ms (median of rounds) | x node -e 0 (median of the rounds\' ratios) | x node -e 0 per round | instructions (M) | x node -e 0 |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    'Instructions: one run each under `valgrind --tool=callgrind` (all threads), after the same warm-up: the deterministic measure.',
    '',
  ].join('\n'));
  expect(base).toBeGreaterThan(0);
  // The floor of issue 17: a bench that measures it fails when it is not met.
  expect(ratio('dbs plan list')).toBeLessThanOrEqual(2);
});
