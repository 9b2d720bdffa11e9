// `dbs plan monitor PLAN`: the samples of a plan's tasks and restores in a window, and the
// series of one metric drawn from them (the command draws it: output/chart.ts).
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import type { RunUsage, SampleRecord } from '../store/catalog.js';
import { parsePointInTime } from './inventory.js';
import { findPlanOrThrow } from './plans.js';

export const MONITOR_METRICS = ['cpu', 'mem', 'in', 'out'] as const;
export type MonitorMetric = (typeof MONITOR_METRICS)[number];

const METRIC = {
  cpu: { unit: '%', what: "CPU of dbs and each run's programs (100% = one core)" },
  mem: { unit: 'bytes', what: "RSS of dbs and each run's programs" },
  in: { unit: 'bytes/s', what: 'read from the source per second (a restore: from the pool)' },
  out: { unit: 'bytes/s', what: 'sent to the pool per second (a restore: into the target)' },
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
}

export interface MonitorSample extends SampleRecord {
  /** `t` as an ISO time. */
  at: string;
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
    ...catalog.listTasks({ planId: plan.id, since: sinceIso, limit: 10_000 }).map((t) => ({ id: t.id, kind: 'task' as const, status: t.status, startedAt: t.startedAt, endedAt: t.endedAt, usage: usageOf(t) })),
    ...catalog.listRestores({ planId: plan.id, since: sinceIso }).map((r) => ({ id: r.id, kind: 'restore' as const, status: r.status, startedAt: r.startedAt, endedAt: r.endedAt, usage: usageOf(r) })),
  ].sort((a, b) => (a.startedAt ?? '').localeCompare(b.startedAt ?? '') || a.id.localeCompare(b.id));
  const samples = catalog.listSamples(runs.map((r) => r.id), since.getTime()).map((x) => ({ ...x, at: new Date(x.t).toISOString() }));
  const prev = new Map<string, SampleRecord>();
  const series = samples.map((x) => {
    const p = prev.get(x.taskId);
    prev.set(x.taskId, x);
    const rate = (v: number, before: number) => Math.max(0, ((v - before) * 1000) / Math.max(1, x.spanMs));
    const value = metric === 'cpu' ? x.cpuPct : metric === 'mem' ? x.rssBytes : metric === 'in' ? rate(x.bytesIn, p?.bytesIn ?? 0) : rate(x.bytesOut, p?.bytesOut ?? 0);
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
    },
  };
}
