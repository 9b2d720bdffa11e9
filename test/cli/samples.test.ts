// Monitoring samples of real tasks and restores (issue 17): a SQLite snapshot run through
// pzstd (the programs execution: a child process), sampled every 0.2 s; its summary on the
// task (`task show`), the samples in `plan monitor` (80 columns, --json), a restore's samples.
// No server.
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/store/catalog.js';
import { dbs } from '../support/cli.js';
import { bigSqlite, smallSqlite } from '../support/fixtures.js';
import { tempDir } from '../support/testbed.js';

const MiB = 1024 * 1024;
const env = { DBS_SAMPLE_SECONDS: '0.2', DBS_EXECUTION: 'programs' };

async function setup() {
  const home = tempDir('home');
  const r = await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('pool')], { home });
  expect(r.code, r.stderr).toBe(0);
  return home;
}

describe('task samples', () => {
  it('a task is sampled: CPU (with its pzstd child), RSS, bytes in/out equal to what it stored; task show and plan monitor show them', async () => {
    const home = await setup();
    const src = bigSqlite(96);
    expect((await dbs(['plan', 'create', 'big', '--source', `sqlite://${src}`, '--pool', 'p'], { home })).code).toBe(0);
    const run = await dbs(['--json', 'plan', 'run', 'big'], { home, env });
    expect(run.code, run.stderr).toBe(0);
    const task = run.json().task;
    expect(run.json().backup.manifest.pipeline.execution).toBe('programs'); // pzstd ran as a child
    const catalog = Catalog.open(home);
    let samples;
    try {
      samples = catalog.listSamples([task.id]);
    } finally {
      catalog.close();
    }
    expect(samples.length).toBeGreaterThanOrEqual(2);
    for (const x of samples) {
      expect(x.cpuPct).toBeGreaterThanOrEqual(0);
      expect(x.rssBytes).toBeGreaterThan(20 * MiB);
      expect(x.rssBytes).toBeLessThan(2048 * MiB);
    }
    expect(samples.some((x) => x.cpuPct > 0)).toBe(true);
    expect(samples.at(-1)).toMatchObject({ bytesIn: task.rawBytes, bytesOut: task.storedBytes });
    // The summary on the task, from `task show --json`.
    const show = await dbs(['--json', 'task', 'show', task.id], { home });
    expect(show.code, show.stderr).toBe(0);
    const t = show.json();
    expect(t).toMatchObject({ bytesIn: task.rawBytes, bytesOut: task.storedBytes, rssPeakBytes: Math.max(...samples.map((x) => x.rssBytes)) });
    expect(t.cpuPeakPct).toBe(Math.max(...samples.map((x) => x.cpuPct)));
    expect(t.cpuSeconds).toBeGreaterThan(0);
    // pzstd's CPU is counted (the child's utime+stime), and is part of the total.
    expect(t.childCpuSeconds).toBeGreaterThan(0);
    expect(t.cpuSeconds).toBeGreaterThan(t.childCpuSeconds);
    const human = await dbs(['task', 'show', task.id], { home });
    expect(human.stdout).toMatch(/^CPU: +\d+\.\d\d s, \d+\.\d\d s of it programs/m);
    expect(human.stdout).toMatch(/^Bytes out: +[\d.]+ MiB to the pool$/m);

    for (const metric of ['cpu', 'mem', 'in', 'out']) {
      const m = await dbs(['plan', 'monitor', 'big', '--metric', metric], { home, env: { COLUMNS: '80' } });
      expect(m.code, m.stderr).toBe(0);
      const lines = m.stdout.trimEnd().split('\n');
      for (const l of lines) expect([...l].length, `${metric}: ${l}`).toBeLessThanOrEqual(80);
      expect(m.stdout).toContain('█');
      expect(m.stdout).toContain(task.id);
    }
    const j = await dbs(['--json', 'plan', 'monitor', 'big', '--metric', 'out', '--since', '1h'], { home });
    expect(j.code, j.stderr).toBe(0);
    const doc = j.json();
    expect(doc).toMatchObject({ plan: 'big', metric: 'out', unit: 'bytes/s', measured: { cpu: true, mem: true, in: true, out: true } });
    expect(doc.samples).toHaveLength(samples.length);
    expect(doc.series).toHaveLength(samples.length);
    expect(doc.runs).toEqual([expect.objectContaining({ id: task.id, kind: 'task', usage: expect.objectContaining({ bytesOut: task.storedBytes }) })]);

    // A restore is sampled too: in = read from the pool, out = handed to the target.
    const out = join(tempDir('restore'), 'r.db');
    const rs = await dbs(['--json', 'backup', 'restore', run.json().backup.id, '--to', `sqlite://${out}`], { home, env });
    expect(rs.code, rs.stderr).toBe(0);
    const r = rs.json();
    expect(r).toMatchObject({ bytesIn: task.storedBytes, bytesOut: task.rawBytes });
    expect(r.rssPeakBytes).toBeGreaterThan(20 * MiB);
    const rshow = await dbs(['restore', 'show', r.id], { home });
    expect(rshow.stdout).toMatch(/^Bytes in: +[\d.]+ MiB from the pool$/m);
    expect(rshow.stdout).toMatch(/^CPU: +\d+\.\d\d s/m);
    const j2 = await dbs(['--json', 'plan', 'monitor', 'big'], { home });
    expect(j2.json().runs.map((x: { kind: string }) => x.kind)).toEqual(['task', 'restore']);
  });

  it('samples record the bytes through each stage (source, compress, encrypt, upload) in every execution; task show and plan monitor --metric compress|encrypt show the rates', async () => {
    const home = await setup();
    const keyDir = tempDir('keys');
    await execa('age-keygen', ['-o', join(keyDir, 'k.txt')]);
    const recipient = (await execa('age-keygen', ['-y', join(keyDir, 'k.txt')])).stdout.trim();
    const src = bigSqlite(32);
    expect((await dbs(['plan', 'create', 'enc', '--source', `sqlite://${src}`, '--pool', 'p', '--encrypt-to', recipient], { home })).code).toBe(0);
    expect((await dbs(['plan', 'create', 'plain', '--source', `sqlite://${src}`, '--pool', 'p'], { home })).code).toBe(0);
    // The executions a SQLite snapshot can take here (file: pzstd writes the pool file).
    for (const [plan, execution] of [['enc', 'node'], ['enc', 'programs'], ['plain', 'node'], ['plain', 'programs'], ['plain', 'file']] as const) {
      const what = `${plan} ${execution}`;
      const run = await dbs(['--json', 'plan', 'run', plan], { home, env: { ...env, DBS_EXECUTION: execution } });
      expect(run.code, `${what}: ${run.stderr}`).toBe(0);
      const task = run.json().task;
      expect(run.json().backup.manifest.pipeline.execution, what).toBe(execution);
      const catalog = Catalog.open(home);
      let last;
      try {
        last = catalog.listSamples([task.id]).at(-1)!;
      } finally {
        catalog.close();
      }
      // What comes out of the last transform is what was stored; compression shrank the raw bytes.
      const expected = plan === 'enc' ? ['compress', 'encrypt'] : ['compress'];
      expect(Object.keys(last.stages ?? {}).sort(), what).toEqual(expected);
      expect(last.stages![expected.at(-1)!], what).toBe(task.storedBytes);
      expect(last.stages!.compress, what).toBeGreaterThan(0);
      expect(last.stages!.compress, what).toBeLessThan(task.rawBytes);
      if (plan === 'enc') expect(last.stages!.encrypt, what).toBeGreaterThan(last.stages!.compress); // age adds its header and tags
      const show = (await dbs(['--json', 'task', 'show', task.id], { home })).json();
      expect(Object.keys(show.throughput), what).toEqual(['source', ...expected, 'upload']);
      for (const v of Object.values(show.throughput as Record<string, number>)) expect(v, what).toBeGreaterThan(0);
      expect(show.throughput.source, what).toBeGreaterThan(show.throughput.compress);
    }
    const encTask = (await dbs(['--json', 'task', 'list', '--plan', 'enc'], { home })).json()[0].id as string;
    const human = await dbs(['task', 'show', encTask], { home });
    expect(human.stdout).toMatch(/^Throughput: +source [\d.]+ \S+\/s, compress [\d.]+ \S+\/s, encrypt [\d.]+ \S+\/s, upload [\d.]+ \S+\/s$/m);
    for (const metric of ['compress', 'encrypt']) {
      const j = (await dbs(['--json', 'plan', 'monitor', 'enc', '--metric', metric], { home })).json();
      expect(j).toMatchObject({ metric, unit: 'bytes/s', measured: { compress: true, encrypt: true } });
      expect(j.series.some((x: { value: number }) => x.value > 0), metric).toBe(true);
      // Each sample's rates; their sum over a run (rate x interval) is the stage's total.
      for (const run of j.runs as { id: string; throughput: Record<string, number> }[]) {
        const xs = (j.samples as { taskId: string; spanMs: number; rates: Record<string, number>; stages: Record<string, number> }[]).filter((x) => x.taskId === run.id);
        const sum = xs.reduce((n, x) => n + ((x.rates[metric] ?? 0) * x.spanMs) / 1000, 0); // a sample taken before the stage began has no rate for it
        expect(Math.abs(sum - xs.at(-1)!.stages[metric]!)).toBeLessThanOrEqual(xs.length);
        expect(run.throughput[metric]).toBeGreaterThan(0);
      }
      const m = await dbs(['plan', 'monitor', 'enc', '--metric', metric], { home, env: { COLUMNS: '80' } });
      expect(m.code, m.stderr).toBe(0);
      expect(m.stdout).toContain('█');
      for (const l of m.stdout.trimEnd().split('\n')) expect([...l].length).toBeLessThanOrEqual(80);
    }
    // A plan without encryption measured none: the chart says so and names what was measured.
    const none = await dbs(['plan', 'monitor', 'plain', '--metric', 'encrypt'], { home, env: { COLUMNS: '80' } });
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toMatch(/no encrypt throughput measured .*--metric compress/);
  });

  it('bad input: an unknown metric, a bad --since, a sample interval out of range; an unknown plan', async () => {
    const home = await setup();
    expect((await dbs(['plan', 'create', 'small', '--source', `sqlite://${smallSqlite()}`, '--pool', 'p'], { home })).code).toBe(0);
    const m = await dbs(['plan', 'monitor', 'small', '--metric', 'disk'], { home });
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/--metric "disk" is not one of cpu, mem, in, out/);
    const s = await dbs(['plan', 'monitor', 'small', '--since', 'yesterday-ish'], { home });
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/--since "yesterday-ish"/);
    const p = await dbs(['plan', 'monitor', 'nope'], { home });
    expect(p.code).toBe(3);
    const bad = await dbs(['plan', 'run', 'small'], { home, env: { DBS_SAMPLE_SECONDS: '0' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/sampleSeconds: must be a number of seconds from 0.1 to 3600 \(got "0"\)/);
    // Nothing ran: no task, no samples; the monitor says so.
    const empty = await dbs(['plan', 'monitor', 'small'], { home });
    expect(empty.code, empty.stderr).toBe(0);
    expect(empty.stdout).toMatch(/no tasks or restores in the window/);
  });
});
