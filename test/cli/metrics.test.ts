// Prometheus metrics: `dbs daemon --metrics-listen` (GET /metrics) and `plan run
// --metrics-file` (a node_exporter textfile written atomically), checked against the catalog;
// the example alert rules checked (and unit-tested) with promtool. SQLite sources only: no server.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { writeFileAtomic, writeMetricsFile } from '../../src/core/metrics.js';
import { Catalog } from '../../src/store/catalog.js';
import { dbs } from '../support/cli.js';
import { daemon } from '../support/daemon.js';
import { smallSqlite } from '../support/fixtures.js';
import { freePort, waitFor } from '../support/ports.js';
import { tempDir } from '../support/testbed.js';

const ROOT = new URL('../../', import.meta.url).pathname;
/** Every label dbs's own metrics may carry: bounded sets, never an id. */
const LABELS = new Set(['plan', 'pool', 'engine', 'type', 'result', 'driver', 'version']);

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format: `name{a="x",b="y"} value` lines (HELP/TYPE comments skipped). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function one(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${hits.length} samples`);
  return hits[0]?.value;
}

const secs = (iso: string | null) => Date.parse(iso!) / 1000;

async function setup() {
  const home = tempDir('home');
  expect((await dbs(['pool', 'bind', 'p', '--type', 'local', '--path', tempDir('pool')], { home })).code).toBe(0);
  const good = smallSqlite();
  const gone = smallSqlite();
  expect((await dbs(['plan', 'create', 'good', '--source', `sqlite://${good}`, '--pool', 'p'], { home })).code).toBe(0);
  expect((await dbs(['plan', 'create', 'bad', '--source', `sqlite://${gone}`, '--pool', 'p'], { home })).code).toBe(0);
  rmSync(gone);
  return { home };
}

/** Checks the dbs_* samples against the catalog, for every plan and pool. */
function checkAgainstCatalog(home: string, samples: Sample[]) {
  const catalog = Catalog.open(home);
  try {
    const ids = new Set<string>();
    for (const t of catalog.listTasks()) ids.add(t.id);
    for (const b of catalog.listBackups()) ids.add(b.id);
    for (const r of catalog.listRestores()) ids.add(r.id);
    for (const s of samples.filter((x) => x.name.startsWith('dbs_'))) {
      for (const [k, v] of Object.entries(s.labels)) {
        expect(LABELS.has(k), `${s.name} has label ${k}`).toBe(true);
        expect(ids.has(v) || /^(task|plan|pool|restore)-[0-9a-f]{10}$|^b-\d{8}T/.test(v), `${s.name} ${k}="${v}" is an id`).toBe(false);
      }
    }
    for (const p of catalog.listPlans()) {
      const l = { plan: p.name, pool: 'p', engine: 'sqlite', type: 'snapshot' };
      const tasks = catalog.listTasks({ planId: p.id });
      const ended = tasks.find((t) => t.status !== 'running' && t.status !== 'queued');
      const ok = tasks.find((t) => t.status === 'succeeded');
      expect(one(samples, 'dbs_plan_paused', l)).toBe(p.status === 'paused' ? 1 : 0);
      expect(one(samples, 'dbs_plan_last_run_timestamp_seconds', l)).toBe(ended ? secs(ended.endedAt) : undefined);
      for (const result of ['succeeded', 'failed', 'interrupted']) {
        expect(one(samples, 'dbs_plan_last_result', { ...l, result })).toBe(ended ? (ended.status === result ? 1 : 0) : undefined);
      }
      expect(one(samples, 'dbs_plan_last_run_duration_seconds', l)).toBe(ended ? (Date.parse(ended.endedAt!) - Date.parse(ended.startedAt!)) / 1000 : undefined);
      expect(one(samples, 'dbs_plan_last_success_timestamp_seconds', l)).toBe(ok ? secs(ok.endedAt) : undefined);
      expect(one(samples, 'dbs_plan_last_success_raw_bytes', l)).toBe(ok ? ok.rawBytes : undefined);
      expect(one(samples, 'dbs_plan_last_success_stored_bytes', l)).toBe(ok ? ok.storedBytes : undefined);
      // What the newest ended task used (its samples' summary).
      expect(ended?.cpuSeconds, `task ${ended?.id} has a usage summary`).toEqual(ended ? expect.any(Number) : undefined);
      expect(one(samples, 'dbs_plan_last_task_cpu_seconds', l)).toBe(ended ? ended.cpuSeconds : undefined);
      expect(one(samples, 'dbs_plan_last_task_peak_rss_bytes', l)).toBe(ended ? ended.rssPeakBytes : undefined);
      expect(one(samples, 'dbs_plan_last_task_in_bytes', l)).toBe(ended ? ended.bytesIn : undefined);
      expect(one(samples, 'dbs_plan_last_task_out_bytes', l)).toBe(ended ? ended.bytesOut : undefined);
      const restored = catalog.listRestores().filter((r) => r.planId === p.id && r.status === 'succeeded').map((r) => secs(r.endedAt));
      expect(one(samples, 'dbs_plan_last_restore_success_timestamp_seconds', l)).toBe(restored.length ? Math.max(...restored) : undefined);
    }
    for (const pool of catalog.listPools()) {
      const l = { pool: pool.name, driver: pool.type };
      const backups = catalog.listBackups({ poolId: pool.id, copyStatus: ['ready'] });
      expect(one(samples, 'dbs_pool_backups', l)).toBe(backups.length);
      expect(one(samples, 'dbs_pool_raw_bytes', l)).toBe(backups.reduce((n, b) => n + b.rawBytes, 0));
      expect(one(samples, 'dbs_pool_stored_bytes', l)).toBe(backups.reduce((n, b) => n + b.storedBytes, 0));
      expect(one(samples, 'dbs_pool_online', l)).toBe(pool.status === 'online' ? 1 : pool.status === 'offline' ? 0 : undefined);
      expect(one(samples, 'dbs_pool_last_check_timestamp_seconds', l)).toBe(pool.checkedAt ? secs(pool.checkedAt) : undefined);
      const o = catalog.db.prepare('SELECT orphan_uploads AS n, orphans_checked_at AS at FROM pools WHERE id = ?').get(pool.id) as { n: number | null; at: string | null };
      expect(one(samples, 'dbs_pool_orphan_uploads', l)).toBe(o.n ?? undefined);
      expect(one(samples, 'dbs_pool_orphan_uploads_check_timestamp_seconds', l)).toBe(o.at ? secs(o.at) : undefined);
    }
  } finally {
    catalog.close();
  }
}

describe('dbs daemon --metrics-listen', () => {
  it('serves /metrics from the catalog on every scrape, with process metrics; other paths are 404', async () => {
    const { home } = await setup();
    const first = await dbs(['--json', 'plan', 'run', 'good'], { home });
    expect(first.code, first.stderr).toBe(0);
    expect((await dbs(['plan', 'run', 'bad'], { home })).code).toBe(3); // SOURCE_NOT_FOUND: a failed task
    const out = join(tempDir('restore'), 'r.db');
    expect((await dbs(['backup', 'restore', first.json().backup.id, '--to', `sqlite://${out}`], { home })).code).toBe(0);

    const port = await freePort();
    const stop = new AbortController();
    const daemon = dbs(['daemon', '--reload', '0.2', '--metrics-listen', `127.0.0.1:${port}`], { home, signal: stop.signal });
    try {
      const url = `http://127.0.0.1:${port}/metrics`;
      const res = await waitFor(async () => {
        const r = await fetch(url);
        return r.ok ? r : undefined;
      }, { what: `the metrics endpoint ${url}`, timeoutMs: 10_000 });
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const samples = parse(await res.text());
      checkAgainstCatalog(home, samples);
      expect(one(samples, 'dbs_plan_last_result', { plan: 'bad', result: 'failed' })).toBe(1);
      expect(one(samples, 'dbs_plan_last_result', { plan: 'good', result: 'succeeded' })).toBe(1);
      expect(one(samples, 'dbs_pool_backups', { pool: 'p' })).toBe(1);
      expect(samples.find((s) => s.name === 'process_cpu_user_seconds_total')?.value).toBeGreaterThan(0);
      expect(samples.find((s) => s.name === 'process_resident_memory_bytes')?.value).toBeGreaterThan(0);

      // A run while the daemon is up shows in the next scrape.
      const second = await dbs(['--json', 'plan', 'run', 'good'], { home });
      expect(second.code, second.stderr).toBe(0);
      const again = parse(await (await fetch(url)).text());
      checkAgainstCatalog(home, again);
      expect(one(again, 'dbs_pool_backups', { pool: 'p' })).toBe(2);
      expect(one(again, 'dbs_plan_last_success_timestamp_seconds', { plan: 'good' })).toBe(secs(second.json().task.endedAt));

      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${port}/metrics/x`)).status).toBe(404);
      expect((await fetch(url, { method: 'POST' })).status).toBe(405);
    } finally {
      stop.abort();
    }
    const r = await daemon;
    expect(r.code, r.stderr).toBe(0);
    // The port is free again once the daemon stopped.
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });

  it('pool online from the daemon\'s probes (with their time) and orphan uploads as the last sweep counted them', async () => {
    const { home } = await setup();
    const qPath = tempDir('pool-q');
    expect((await dbs(['pool', 'bind', 'q', '--type', 'local', '--path', qPath], { home })).code).toBe(0);
    const planId = (await dbs(['--json', 'plan', 'show', 'good'], { home })).json().id as string;
    // Two uploads a dead process left (the local driver's temp files) under the plan's prefix.
    const poolPath = (await dbs(['--json', 'pool', 'show', 'p'], { home })).json().config.path as string;
    const dir = join(poolPath, 'dbs', 'backups', planId, 'b-20200101T000000Z-dead');
    mkdirSync(dir, { recursive: true });
    for (const n of ['a', 'b']) writeFileSync(join(dir, `.dbs-tmp-${n}`), 'partial');
    // Before any sweep: no orphan sample (unknown is not 0); q answered when it was bound.
    const file = join(tempDir('prom'), 'dbs.prom');
    const cat = Catalog.open(home);
    try {
      await writeMetricsFile(cat, file);
    } finally {
      cat.close();
    }
    let s = parse(readFileSync(file, 'utf8'));
    expect(one(s, 'dbs_pool_orphan_uploads', { pool: 'p' })).toBeUndefined();
    expect(one(s, 'dbs_pool_online', { pool: 'q' })).toBe(1);

    renameSync(qPath, `${qPath}.away`); // pool q goes away (an unmounted disk)
    const port = await freePort();
    const started = Date.now() / 1000;
    const d = daemon(home, ['--probe', '0.3', '--probe-timeout', '5', '--metrics-listen', `127.0.0.1:${port}`]);
    try {
      await d.waitFor((l) => l.event === 'pool.offline' && String(l.message).includes('pool q'));
      const url = `http://127.0.0.1:${port}/metrics`;
      s = parse(await (await fetch(url)).text());
      checkAgainstCatalog(home, s);
      // The daemon's start swept p: it found (and aborted) the two.
      expect(one(s, 'dbs_pool_orphan_uploads', { pool: 'p' })).toBe(2);
      expect(one(s, 'dbs_pool_orphan_uploads_check_timestamp_seconds', { pool: 'p' })).toBeGreaterThanOrEqual(Math.floor(started));
      expect(readdirSync(dir)).toEqual([]);
      expect(one(s, 'dbs_pool_online', { pool: 'p', driver: 'local' })).toBe(1);
      expect(one(s, 'dbs_pool_online', { pool: 'q', driver: 'local' })).toBe(0);
      // Probes repeat: the probe time moves on.
      const t1 = one(s, 'dbs_pool_last_check_timestamp_seconds', { pool: 'p' })!;
      expect(t1).toBeGreaterThanOrEqual(Math.floor(started));
      await waitFor(async () => (one(parse(await (await fetch(url)).text()), 'dbs_pool_last_check_timestamp_seconds', { pool: 'p' })! > t1 ? true : undefined), { what: 'a later probe of p', timeoutMs: 10_000 });
      // q comes back: the next probe says so.
      // An empty folder where q was (the mount point) is not q: no marker, still offline, and
      // the probe wrote nothing there.
      mkdirSync(qPath);
      await new Promise((r) => setTimeout(r, 1000));
      expect(d.lines.some((l) => l.event === 'pool.online')).toBe(false);
      expect(readdirSync(qPath)).toEqual([]);
      rmSync(qPath, { recursive: true });
      renameSync(`${qPath}.away`, qPath);
      await d.waitFor((l) => l.event === 'pool.online' && String(l.message).includes('pool q'));
      s = parse(await (await fetch(url)).text());
      expect(one(s, 'dbs_pool_online', { pool: 'q' })).toBe(1);
      checkAgainstCatalog(home, s);
      // A sweep that finds none records 0 (pool check).
      expect((await dbs(['pool', 'check', 'p'], { home })).code).toBe(0);
      expect(one(parse(await (await fetch(url)).text()), 'dbs_pool_orphan_uploads', { pool: 'p' })).toBe(0);
    } finally {
      const r = await d.stop();
      expect(r.code, r.stderr).toBe(0);
    }
  });

  it('a bad --probe or --probe-timeout is exit 2 naming the flag; nothing runs and the catalog is unchanged', async () => {
    const { home } = await setup();
    const snapshot = () => {
      const c = Catalog.open(home);
      try {
        return JSON.stringify(['locks', 'events', 'tasks', 'pools'].map((t) => c.db.prepare(`SELECT * FROM ${t} ORDER BY 1`).all()));
      } finally {
        c.close();
      }
    };
    const before = snapshot();
    for (const flag of ['--probe', '--probe-timeout']) {
      for (const bad of ['0', '-1', 'abc', '1e9', '']) {
        const r = await dbs(['--json', 'daemon', flag, bad], { home });
        expect(r.code, `${flag} ${bad}: ${r.stderr}`).toBe(2);
        expect(r.stderr, `${flag} ${bad}`).toContain(flag);
      }
    }
    expect(snapshot()).toBe(before);
  });

  it('a port in use is exit 4 and releases the daemon lock; a bad ADDR:PORT is exit 2 before anything runs', async () => {
    const { home } = await setup();
    const port = await freePort();
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(port, '127.0.0.1', () => r()));
    try {
      const r = await dbs(['--json', 'daemon', '--metrics-listen', `127.0.0.1:${port}`], { home });
      expect(r.code, r.stderr).toBe(4);
      expect(JSON.parse(r.stderr.trim().split('\n').pop()!)).toMatchObject({ code: 'IN_USE', message: expect.stringContaining(`127.0.0.1:${port}`) });
    } finally {
      taken.close();
    }
    const catalog = Catalog.open(home);
    try {
      expect(catalog.getLock('daemon')).toBeUndefined();
    } finally {
      catalog.close();
    }
    for (const bad of ['9150', 'localhost', '127.0.0.1:0', '127.0.0.1:70000', 'nohost.example:9150', '::1:9150', '[127.0.0.1]:9150']) {
      const b = await dbs(['daemon', '--metrics-listen', bad], { home });
      expect(b.code, `${bad}: ${b.stderr}`).toBe(2);
      expect(b.stderr).toContain('--metrics-listen');
    }
    const twice = await dbs(['daemon', '--metrics-listen', '127.0.0.1:1', '--metrics-listen', '127.0.0.1:2'], { home });
    expect(twice.code).toBe(2);
    const catalog2 = Catalog.open(home);
    try {
      expect(catalog2.listTasks()).toEqual([]);
    } finally {
      catalog2.close();
    }
  });
});

describe('plan run --metrics-file', () => {
  it('--due writes a node_exporter textfile that matches the catalog; a single run writes one too, also when it fails', async () => {
    const { home } = await setup();
    const dir = tempDir('textfile');
    const file = join(dir, 'dbs.prom');
    const nothing = await dbs(['--json', 'plan', 'run', '--due', '--metrics-file', file], { home });
    expect(nothing.code, nothing.stderr).toBe(0);
    const empty = parse(readFileSync(file, 'utf8'));
    checkAgainstCatalog(home, empty);
    expect(empty.some((s) => s.name === 'dbs_plan_last_run_timestamp_seconds')).toBe(false);
    // No process metrics in a textfile: node_exporter would show a process that has exited.
    expect(empty.some((s) => s.name.startsWith('process_') || s.name.startsWith('nodejs_'))).toBe(false);

    expect((await dbs(['plan', 'run', 'good', '--metrics-file', file], { home })).code).toBe(0);
    checkAgainstCatalog(home, parse(readFileSync(file, 'utf8')));
    const failed = await dbs(['plan', 'run', 'bad', '--metrics-file', file], { home });
    expect(failed.code, failed.stderr).toBe(3); // SOURCE_NOT_FOUND: a failed task
    const after = parse(readFileSync(file, 'utf8'));
    checkAgainstCatalog(home, after);
    expect(one(after, 'dbs_plan_last_result', { plan: 'bad', result: 'failed' })).toBe(1);
    expect(readdirSync(dir)).toEqual(['dbs.prom']);

    // promtool (the Prometheus project's checker) accepts the file.
    const lint = await execa('promtool', ['check', 'metrics'], { input: readFileSync(file, 'utf8'), reject: false });
    expect(lint.exitCode, `${lint.stdout}${lint.stderr}`).toBe(0);
  });

  it('a bad --metrics-file is exit 2 and runs nothing; usage errors write no file', async () => {
    const { home } = await setup();
    const dir = tempDir('textfile');
    for (const bad of [join(dir, 'missing', 'dbs.prom'), join(dir, 'dbs.txt'), join(dir, '.prom')]) {
      const r = await dbs(['plan', 'run', 'good', '--metrics-file', bad], { home });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('--metrics-file');
    }
    const usage = await dbs(['plan', 'run', 'good', '--due', '--metrics-file', join(dir, 'dbs.prom')], { home });
    expect(usage.code).toBe(2);
    expect(readdirSync(dir)).toEqual([]);
    const catalog = Catalog.open(home);
    try {
      expect(catalog.listTasks()).toEqual([]);
    } finally {
      catalog.close();
    }
  });

  it('a reader in another process never sees a partial file (and would with a plain rewrite)', async () => {
    const dir = tempDir('textfile');
    const file = join(dir, 'dbs.prom');
    const stopFile = join(dir, 'stop');
    const END = '# end\n';
    const body = (i: number) => `${`x_metric{i="${i}"} 1\n`.repeat(40_000)}${END}`;
    writeFileSync(file, body(0));
    /** Reads the file as fast as it can until the stop file appears; counts reads that are not whole. */
    const startReader = () => execa(process.execPath, ['-e', `
      const fs = require('node:fs');
      let reads = 0, partial = 0;
      while (!fs.existsSync(process.argv[2])) {
        let t;
        try { t = fs.readFileSync(process.argv[1], 'utf8'); } catch { partial++; continue; }
        reads++;
        if (!t.endsWith(${JSON.stringify(END)})) partial++;
      }
      console.log(JSON.stringify({ reads, partial }));`, file, stopFile]);
    const reader = startReader();
    const run = async (write: (i: number) => Promise<void>) => {
      for (let i = 1; i <= 60; i++) await write(i);
    };
    await new Promise((r) => setTimeout(r, 200));
    await run((i) => writeFileAtomic(file, body(i)));
    writeFileSync(stopFile, '');
    const atomic = JSON.parse((await reader).stdout) as { reads: number; partial: number };
    expect(atomic.reads, JSON.stringify(atomic)).toBeGreaterThan(10);
    expect(atomic.partial, JSON.stringify(atomic)).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['dbs.prom', 'stop']);

    // The control: the same reader does catch a file rewritten in place (truncate, then write in pieces).
    rmSync(stopFile);
    const control = startReader();
    await new Promise((r) => setTimeout(r, 200));
    await run(async (i) => {
      const fh = await open(file, 'w');
      try {
        const b = Buffer.from(body(i));
        for (let o = 0; o < b.length; o += 64 * 1024) {
          await fh.write(b.subarray(o, o + 64 * 1024));
          await new Promise((r) => setImmediate(r));
        }
      } finally {
        await fh.close();
      }
    });
    writeFileSync(stopFile, '');
    const plain = JSON.parse((await control).stdout) as { reads: number; partial: number };
    expect(plain.partial, JSON.stringify(plain)).toBeGreaterThan(0);
  });
});

describe('examples/prometheus/alerts.yml', () => {
  it('promtool accepts the rules and their unit tests pass (failed backup, no success for 26 h, pool offline, pool not probed, orphan uploads)', async () => {
    expect(existsSync(join(ROOT, 'examples/prometheus/alerts.yml'))).toBe(true);
    const check = await execa('promtool', ['check', 'rules', 'examples/prometheus/alerts.yml'], { cwd: ROOT, reject: false });
    expect(check.exitCode, `${check.stdout}${check.stderr}`).toBe(0);
    expect(check.stdout).toMatch(/SUCCESS: [1-9]\d* rules found/);
    const test = await execa('promtool', ['test', 'rules', 'examples/prometheus/alerts.test.yml'], { cwd: ROOT, reject: false });
    expect(test.exitCode, `${test.stdout}${test.stderr}`).toBe(0);
    expect(test.stdout).toContain('SUCCESS');
  });
});
