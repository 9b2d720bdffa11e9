// `dbs plan monitor PLAN`: the samples of a plan's tasks and restores in a window, and the
// series of one metric drawn from them (the command draws it: output/chart.ts).
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import type { RunUsage, SampleRecord } from '../store/catalog.js';
import { parsePointInTime } from './inventory.js';
import { findPlanOrThrow } from './plans.js';
import { runThroughput, stageRates, type StageRates } from './samples.js';

export const MONITOR_METRICS = ['cpu', 'mem', 'in', 'out', 'compress', 'encrypt'] as const;
export type MonitorMetric = (typeof MONITOR_METRICS)[number];

const METRIC = {
  cpu: { unit: '%', what: "CPU of dbs and each run's programs (100% = one core)" },
  mem: { unit: 'bytes', what: "RSS of dbs and each run's programs" },
  in: { unit: 'bytes/s', what: 'read from the source per second (a restore: from the pool)' },
  out: { unit: 'bytes/s', what: 'sent to the pool per second (a restore: into the target)' },
  compress: { unit: 'bytes/s', what: 'compressed bytes out of the compress stage per second (backups)' },
  encrypt: { unit: 'bytes/s', what: 'encrypted bytes out of the encrypt stage per second (backups with --encrypt-to)' },
} as const;

export interface MonitorInput {
  plan: string;
  /** An age (24h) or a time; default 24h. */
  since?: string;
  metric?: string;
}

export interface MonitorRun {
  id: string;
  kind: 'task' | 'restore';
  status: string;
  startedAt: string | null;
  endedAt: string | null;
  /** The run's summary (null while it runs, or recorded before samples existed). */
  usage: RunUsage | null;
  /** Average bytes/s per stage over its samples (source, compress, encrypt, upload); null without samples. */
  throughput: StageRates | null;
}

export interface MonitorSample extends SampleRecord {
  /** `t` as an ISO time. */
  at: string;
  /** Bytes per second through each stage over the sample's interval: source, compress, encrypt, upload. */
  rates: StageRates;
}

export interface MonitorResult {
  plan: string;
  sourceKind: string;
  backupType: string;
  metric: MonitorMetric;
  unit: '%' | 'bytes' | 'bytes/s';
  description: string;
  since: string;
  runs: MonitorRun[];
  samples: MonitorSample[];
  /** The metric per sample, oldest first (in/out: the rate over the sample's interval). */
  series: { run: string; t: number; value: number }[];
  /** Whether any sample of the window has a value above 0, per metric. */
  measured: Record<MonitorMetric, boolean>;
}

const usageOf = (x: { cpuSeconds?: number | null; childCpuSeconds?: number | null; cpuAvgPct?: number | null; cpuPeakPct?: number | null; rssPeakBytes?: number | null; bytesIn?: number | null; bytesOut?: number | null }): RunUsage | null =>
  x.cpuSeconds === null || x.cpuSeconds === undefined
    ? null
    : { cpuSeconds: x.cpuSeconds, childCpuSeconds: x.childCpuSeconds ?? 0, cpuAvgPct: x.cpuAvgPct ?? 0, cpuPeakPct: x.cpuPeakPct ?? 0, rssPeakBytes: x.rssPeakBytes ?? 0, bytesIn: x.bytesIn ?? 0, bytesOut: x.bytesOut ?? 0 };

export function runPlanMonitor(i: MonitorInput, ctx: Context): MonitorResult {
  const metric = (i.metric ?? 'cpu') as MonitorMetric;
  if (!MONITOR_METRICS.includes(metric)) {
    throw new DbsError('INVALID_ARGUMENT', `--metric ${JSON.stringify(i.metric)} is not one of ${MONITOR_METRICS.join(', ')}`, { hint: 'e.g. --metric mem' });
  }
  const since = parsePointInTime(i.since ?? '24h', '--since', ctx.clock());
  const catalog = ctx.catalog();
  const plan = findPlanOrThrow(catalog, i.plan);
  const sinceIso = since.toISOString();
  const runs: MonitorRun[] = [
    ...catalog.listTasks({ planId: plan.id, since: sinceIso, limit: 10_000 }).map((t) => ({ id: t.id, kind: 'task' as const, status: t.status, startedAt: t.startedAt, endedAt: t.endedAt, usage: usageOf(t), throughput: null })),
    ...catalog.listRestores({ planId: plan.id, since: sinceIso }).map((r) => ({ id: r.id, kind: 'restore' as const, status: r.status, startedAt: r.startedAt, endedAt: r.endedAt, usage: usageOf(r), throughput: null })),
  ].sort((a, b) => (a.startedAt ?? '').localeCompare(b.startedAt ?? '') || a.id.localeCompare(b.id));
  const prev = new Map<string, SampleRecord>();
  const byRun = new Map<string, SampleRecord[]>();
  const samples: MonitorSample[] = catalog.listSamples(runs.map((r) => r.id), since.getTime()).map((x) => {
    const p = prev.get(x.taskId);
    prev.set(x.taskId, x);
    byRun.set(x.taskId, [...(byRun.get(x.taskId) ?? []), x]);
    return { ...x, at: new Date(x.t).toISOString(), rates: stageRates(x, p) };
  });
  for (const r of runs) r.throughput = runThroughput(byRun.get(r.id) ?? []);
  const series = samples.map((x) => {
    const value = metric === 'cpu' ? x.cpuPct : metric === 'mem' ? x.rssBytes : (x.rates[metric === 'in' ? 'source' : metric === 'out' ? 'upload' : metric] ?? 0);
    return { run: x.taskId, t: x.t, value: Math.round(value * 10) / 10 };
  });
  return {
    plan: plan.name,
    sourceKind: plan.sourceKind,
    backupType: plan.backupType,
    metric,
    unit: METRIC[metric].unit,
    description: METRIC[metric].what,
    since: sinceIso,
    runs,
    samples,
    series,
    measured: {
      cpu: samples.some((x) => x.cpuPct > 0),
      mem: samples.some((x) => x.rssBytes > 0),
      in: samples.some((x) => x.bytesIn > 0),
      out: samples.some((x) => x.bytesOut > 0),
      compress: samples.some((x) => (x.stages?.compress ?? 0) > 0),
      encrypt: samples.some((x) => (x.stages?.encrypt ?? 0) > 0),
    },
  };
}
