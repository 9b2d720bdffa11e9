// Monitoring samples: the catalog keeps them bounded (a run's own cap, the roll-up of old
// samples) without losing what the summaries and charts read (peaks, totals, CPU time); the
// sampler's numbers; the chart fits 80 columns. No server.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Catalog, type SampleRecord } from '../../src/store/catalog.js';
import { MAX_SAMPLES_PER_RUN, ROLLUP_AFTER_MS, ROLLUP_BUCKET_MS, Sampler, boundSamples } from '../../src/core/samples.js';
import { barChart } from '../../src/output/chart.js';
import { tempDir } from '../support/testbed.js';

function catalog(): Catalog {
  return Catalog.open(join(tempDir('h'), 'home'));
}

/** `n` samples of run `id` every `stepMs` ending at `end`: CPU i%, RSS i MiB, 1000 bytes more in/out each. */
function fill(c: Catalog, id: string, n: number, stepMs: number, end: number): SampleRecord[] {
  const xs: SampleRecord[] = [];
  for (let i = 1; i <= n; i++) {
    const x = { taskId: id, t: end - (n - i) * stepMs, spanMs: stepMs, cpuPct: i % 200, rssBytes: (i % 300) * 1024 * 1024, bytesIn: i * 1000, bytesOut: i * 500, stages: { compress: i * 300, encrypt: i * 310 } };
    c.insertSample(x);
    xs.push(x);
  }
  return xs;
}

/** CPU time the samples account for (cpu % x span), which merging must keep. */
const cpuTime = (xs: SampleRecord[]) => xs.reduce((n, x) => n + x.cpuPct * x.spanMs, 0);

describe('sample bounds', () => {
  it('a long run keeps at most MAX_SAMPLES_PER_RUN samples, with its peaks, totals and CPU time', () => {
    const c = catalog();
    try {
      const now = Date.now();
      const before = fill(c, 'task-long', 5000, 200, now);
      fill(c, 'task-other', 10, 200, now);
      boundSamples(c, 'task-long', now);
      const after = c.listSamples(['task-long']);
      expect(after.length).toBeLessThanOrEqual(MAX_SAMPLES_PER_RUN);
      expect(after.length).toBeGreaterThan(MAX_SAMPLES_PER_RUN / 2);
      expect(Math.max(...after.map((x) => x.rssBytes))).toBe(Math.max(...before.map((x) => x.rssBytes)));
      expect(Math.max(...after.map((x) => x.cpuPct))).toBeLessThanOrEqual(Math.max(...before.map((x) => x.cpuPct)));
      expect(after.at(-1)).toMatchObject({ t: now, bytesIn: 5000 * 1000, bytesOut: 5000 * 500 });
      expect(after.reduce((n, x) => n + x.spanMs, 0)).toBeGreaterThanOrEqual(5000 * 200);
      // CPU time: kept to within the rounding of the span of partial buckets.
      expect(Math.abs(cpuTime(after) - cpuTime(before)) / cpuTime(before)).toBeLessThan(0.01);
      // Totals only grow from sample to sample.
      for (let i = 1; i < after.length; i++) expect(after[i]!.bytesOut).toBeGreaterThanOrEqual(after[i - 1]!.bytesOut);
      // A merged sample keeps the stage totals of its bucket's last sample (the one whose bytes in it has).
      for (const x of after) expect(x.stages).toEqual({ compress: (x.bytesIn / 1000) * 300, encrypt: (x.bytesIn / 1000) * 310 });
      // Another run is not touched; bounding again changes nothing.
      expect(c.countSamples('task-other')).toBe(10);
      const n = after.length;
      boundSamples(c, 'task-long', now);
      expect(c.countSamples('task-long')).toBe(n);
    } finally {
      c.close();
    }
  });

  it('samples older than the roll-up age are merged into one-minute buckets; recent ones stay whole', () => {
    const c = catalog();
    try {
      // A minute-aligned clock: the old run's last sample is alone in its bucket (kept as it
      // is, already one row for its minute), its others fill whole buckets.
      const now = Math.floor(Date.now() / ROLLUP_BUCKET_MS) * ROLLUP_BUCKET_MS;
      const old = now - ROLLUP_AFTER_MS - 3600_000;
      // An old run of 10 minutes at 1 s, and a recent one of 100 samples.
      const oldXs = fill(c, 'task-old', 600, 1000, old);
      fill(c, 'task-new', 100, 1000, now);
      boundSamples(c, 'task-new', now);
      const rolled = c.listSamples(['task-old']);
      expect(rolled.length).toBe(11);
      // One row per minute bucket; a row shorter than a bucket is an original, unmerged sample.
      expect(new Set(rolled.map((x) => Math.floor(x.t / ROLLUP_BUCKET_MS))).size).toBe(rolled.length);
      expect(rolled.filter((x) => x.spanMs < ROLLUP_BUCKET_MS)).toEqual([oldXs.at(-1)]);
      expect(rolled.reduce((n, x) => n + x.spanMs, 0)).toBeGreaterThanOrEqual(600 * 1000);
      expect(Math.abs(cpuTime(rolled) - cpuTime(oldXs)) / cpuTime(oldXs)).toBeLessThan(0.01);
      expect(rolled.at(-1)).toMatchObject({ t: old, bytesOut: 600 * 500, stages: { compress: 600 * 300, encrypt: 600 * 310 } });
      for (const x of rolled) expect(x.stages).toEqual({ compress: (x.bytesIn / 1000) * 300, encrypt: (x.bytesIn / 1000) * 310 });
      expect(Math.max(...rolled.map((x) => x.rssBytes))).toBe(Math.max(...oldXs.map((x) => x.rssBytes)));
      expect(c.countSamples('task-new')).toBe(100);
      // The bound holds over many runs: each old run is at most one row per minute it ran.
      boundSamples(c, 'task-new', now);
      expect(c.countSamples('task-old')).toBe(rolled.length);
    } finally {
      c.close();
    }
  });
});

describe('stage counters read back', () => {
  it('a sample whose stages column is not an object of byte counts is INVALID_RECORD naming the run', () => {
    const c = catalog();
    try {
      for (const [i, bad] of ['{not json', '[1,2]', '{"compress":-1}', '{"compress":"9"}'].entries()) {
        const id = `task-bad${i}`;
        c.db.prepare('INSERT INTO task_samples (task_id, t, span_ms, cpu_pct, rss_bytes, bytes_in, bytes_out, stages) VALUES (?, 1, 1, 0, 0, 0, 0, ?)').run(id, bad);
        expect(() => c.listSamples([id]), bad).toThrow(expect.objectContaining({ code: 'INVALID_RECORD', message: expect.stringContaining(id) }));
      }
    } finally {
      c.close();
    }
  });
});

describe('Sampler', () => {
  it('stores a sample per tick and a last one at stop; the summary adds up the samples', async () => {
    const c = catalog();
    try {
      const s = new Sampler({ catalog: c, runId: 'task-s', intervalMs: 50 }).start();
      s.bytesIn(1000);
      // Some CPU of this process: 0.3 s of it, however long a loaded machine takes to give it.
      const cpu0 = process.cpuUsage();
      let x = 0;
      for (let used = 0; used < 300_000; used = process.cpuUsage(cpu0).user) for (let i = 0; i < 1e5; i++) x += Math.sqrt(x + 1);
      await new Promise((r) => setTimeout(r, 120));
      s.addBytesOut(700);
      s.addBytesOut(300);
      const u = s.stop();
      const xs = c.listSamples(['task-s']);
      expect(xs.length).toBeGreaterThanOrEqual(2);
      expect(xs.at(-1)).toMatchObject({ bytesIn: 1000, bytesOut: 1000 });
      expect(u).toMatchObject({ bytesIn: 1000, bytesOut: 1000, childCpuSeconds: 0 });
      expect(u.cpuSeconds).toBeGreaterThan(0.2);
      expect(u.cpuPeakPct).toBe(Math.max(...xs.map((y) => y.cpuPct)));
      expect(u.rssPeakBytes).toBe(Math.max(...xs.map((y) => y.rssBytes)));
      expect(u.rssPeakBytes).toBeGreaterThan(20 * 1024 * 1024);
      expect(s.stop()).toBe(u); // once
      expect(x).toBeGreaterThan(0);
    } finally {
      c.close();
    }
  });
});

describe('barChart', () => {
  it('fits 80 columns for any number of samples, with the peak on the top row', () => {
    for (const n of [1, 3, 70, 1000]) {
      const values = Array.from({ length: n }, (_v, i) => ((i * 37) % 101) + 1);
      const text = barChart(values, { width: 80, format: (v) => `${v.toFixed(1)}%`, marks: [0, Math.floor(n / 2)], left: '2026-12-02 10:00:00', right: '2026-12-02 11:00:00' });
      const lines = text.split('\n');
      expect(lines.length).toBe(12);
      for (const l of lines) expect([...l].length, l).toBeLessThanOrEqual(80);
      expect(lines[0]).toContain('█');
      expect(lines[0]).toMatch(/^ *\d+\.\d%/);
      expect(lines[10]).toMatch(/┴/);
    }
  });
});
