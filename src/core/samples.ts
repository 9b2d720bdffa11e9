// Monitoring samples of a task or a restore (issue 17). Every `sampleSeconds` (setting) a
// sampler reads:
//   - CPU: this process's (process.cpuUsage) plus the run's children's (pipeline/child.ts
//     taskChildUsage: /proc/PID/stat of every program started under the run's task tag, and
//     the whole CPU of those that exited), as % of one core over the interval;
//   - RSS: this process's plus the running children's;
//   - bytes in (read from the source; a restore: from the pool) and bytes out (sent to the pool;
//     a restore: into the target), totals so far, from the data path's counters;
//   - bytes out of each transform stage of a backup's data path (compress, encrypt), totals so
//     far (pipeline/run.ts onStageBytes): with bytes in (the source) and out (the upload, through
//     the gateway's throttle), each stage's throughput between two samples.
// In a daemon several runs share the process: each run's samples carry the whole process's
// CPU and RSS (dbs's own share cannot be split per run), and only its own children's.
// Samples go into the catalog (task_samples) as they are taken, so a running task can be
// watched; at the end the summary (RunUsage) goes on the task or restore, and the samples are
// bounded: a run keeps at most MAX_SAMPLES_PER_RUN rows (longer runs are merged into coarser
// buckets), and rows older than ROLLUP_AFTER_MS are merged into ROLLUP_BUCKET_MS buckets.
import type { Catalog, RunUsage, SampleRecord } from '../store/catalog.js';
import { forgetTaskChildren, taskChildUsage } from '../pipeline/child.js';

/** At most this many samples per run (at the default 5 s: one hour at full resolution). */
export const MAX_SAMPLES_PER_RUN = 720;
/** Samples older than this are merged into ROLLUP_BUCKET_MS buckets. */
export const ROLLUP_AFTER_MS = 7 * 24 * 3600 * 1000;
export const ROLLUP_BUCKET_MS = 60 * 1000;

export interface SamplerOptions {
  catalog: Catalog;
  /** The task or restore id; also the task tag its children carry (DBS_TASK). */
  runId: string;
  intervalMs: number;
  /** Unix ms now (tests give a clock). */
  now?: () => number;
}

export class Sampler {
  readonly #o: SamplerOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #lastT: number;
  readonly #startT: number;
  #lastCpu: NodeJS.CpuUsage;
  readonly #startCpu: NodeJS.CpuUsage;
  #lastChildCpu = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  /** Totals per transform stage (only stages that saw a byte). */
  readonly #stages: Record<string, number> = {};
  #peakCpu = 0;
  #peakRss = 0;
  #samples = 0;
  #stopped: RunUsage | undefined;
  /** Sampling must never fail a run: the first error stops sampling and is kept here. */
  error: unknown;

  constructor(o: SamplerOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#startT = this.#lastT = this.#now();
    this.#startCpu = this.#lastCpu = process.cpuUsage();
  }

  start(): this {
    this.#timer = setInterval(() => this.sample(), Math.max(50, this.#o.intervalMs));
    this.#timer.unref();
    return this;
  }

  /** Bytes read from the source (a restore: from the pool) so far, a total (never goes down). */
  bytesIn(total: number): void {
    if (total > this.#bytesIn) this.#bytesIn = total;
  }

  addBytesIn(n: number): void {
    this.#bytesIn += n;
  }

  /** Bytes sent to the pool (a restore: handed to the target) so far, a total. */
  bytesOut(total: number): void {
    if (total > this.#bytesOut) this.#bytesOut = total;
  }

  addBytesOut(n: number): void {
    this.#bytesOut += n;
  }

  /** Bytes out of a transform stage of the data path (compress, encrypt), added chunk by chunk. */
  addStageBytes(stage: string, n: number): void {
    this.#stages[stage] = (this.#stages[stage] ?? 0) + n;
  }

  /** Takes one sample now and stores it. */
  sample(): SampleRecord | undefined {
    if (this.error !== undefined) return undefined;
    try {
      const t = this.#now();
      const span = Math.max(1, t - this.#lastT);
      const cpu = process.cpuUsage(this.#lastCpu);
      const child = taskChildUsage(this.#o.runId);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6 + Math.max(0, child.cpuSeconds - this.#lastChildCpu);
      const x: SampleRecord = {
        taskId: this.#o.runId,
        t,
        spanMs: span,
        cpuPct: Math.round(((cpuSeconds * 1000) / span) * 1000) / 10,
        rssBytes: process.memoryUsage.rss() + child.rssBytes,
        bytesIn: this.#bytesIn,
        bytesOut: this.#bytesOut,
        ...(Object.keys(this.#stages).length ? { stages: { ...this.#stages } } : {}),
      };
      this.#lastT = t;
      this.#lastCpu = process.cpuUsage();
      this.#lastChildCpu = Math.max(this.#lastChildCpu, child.cpuSeconds);
      this.#peakCpu = Math.max(this.#peakCpu, x.cpuPct);
      this.#peakRss = Math.max(this.#peakRss, x.rssBytes);
      this.#o.catalog.insertSample(x);
      this.#samples++;
      return x;
    } catch (e) {
      this.error = e;
      this.#halt();
      return undefined;
    }
  }

  #halt(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Takes the last sample, stops, bounds the stored samples and returns the run's summary. */
  stop(): RunUsage {
    if (this.#stopped) return this.#stopped;
    this.#halt();
    this.sample();
    const wall = Math.max(1, this.#now() - this.#startT);
    const own = process.cpuUsage(this.#startCpu);
    const cpuSeconds = (own.user + own.system) / 1e6 + this.#lastChildCpu;
    forgetTaskChildren(this.#o.runId);
    this.#stopped = {
      cpuSeconds: Math.round(cpuSeconds * 1000) / 1000,
      childCpuSeconds: Math.round(this.#lastChildCpu * 1000) / 1000,
      cpuAvgPct: Math.round(((cpuSeconds * 1000) / wall) * 1000) / 10,
      cpuPeakPct: this.#peakCpu,
      rssPeakBytes: this.#peakRss,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
    };
    try {
      boundSamples(this.#o.catalog, this.#o.runId, this.#now());
    } catch (e) {
      this.error ??= e;
    }
    return this.#stopped;
  }
}

/**
 * Keeps the catalog's samples bounded: this run's at most MAX_SAMPLES_PER_RUN (merged into
 * equal buckets over its duration when it has more), every run's older than ROLLUP_AFTER_MS
 * in ROLLUP_BUCKET_MS buckets.
 */
export function boundSamples(catalog: Catalog, runId: string, now: number): void {
  const n = catalog.countSamples(runId);
  if (n > MAX_SAMPLES_PER_RUN) {
    const xs = catalog.listSamples([runId]);
    const first = xs[0]!.t - xs[0]!.spanMs;
    const duration = xs.at(-1)!.t - first;
    // Buckets are aligned to multiples of their width: one more than the run needs absorbs
    // the misalignment, so the run ends with at most MAX_SAMPLES_PER_RUN rows.
    catalog.rollUpSamples({ taskId: runId, bucketMs: Math.ceil(duration / (MAX_SAMPLES_PER_RUN - 1)) + 1 });
  }
  catalog.rollUpSamples({ before: now - ROLLUP_AFTER_MS, bucketMs: ROLLUP_BUCKET_MS });
}

/** A started sampler for a run (stop() it in a finally). */
export function startSampler(catalog: Catalog, runId: string, sampleSeconds: number): Sampler {
  return new Sampler({ catalog, runId, intervalMs: sampleSeconds * 1000 }).start();
}

/** Bytes per second through each stage of the data path: source (bytes in), compress, encrypt, upload (bytes out). */
export type StageRates = Record<string, number>;

/** The stage totals of a sample in data-path order: source, the transforms, upload. */
export function stageTotals(x: SampleRecord): Record<string, number> {
  return { source: x.bytesIn, ...(x.stages ?? {}), upload: x.bytesOut };
}

/** Rates between two samples of one run (`prev` absent: from the run's start, all 0). */
export function stageRates(x: SampleRecord, prev: SampleRecord | undefined): StageRates {
  const now = stageTotals(x);
  const before = prev ? stageTotals(prev) : {};
  const out: StageRates = {};
  for (const [k, v] of Object.entries(now)) out[k] = Math.round(Math.max(0, ((v - (before[k] ?? 0)) * 1000) / Math.max(1, x.spanMs)));
  return out;
}

/**
 * A run's average throughput per stage (bytes/s over the time its samples cover, first start
 * to last end), or null without samples. The samples of one run, oldest first.
 */
export function runThroughput(samples: readonly SampleRecord[]): StageRates | null {
  const last = samples.at(-1);
  if (!last) return null;
  const ms = Math.max(1, last.t - (samples[0]!.t - samples[0]!.spanMs));
  const out: StageRates = {};
  for (const [k, v] of Object.entries(stageTotals(last))) out[k] = Math.round((v * 1000) / ms);
  return out;
}

