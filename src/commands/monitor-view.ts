// The human rendering of `dbs plan monitor`: a heading, the chart, the runs with their summaries.
import type { MonitorMetric, MonitorResult } from '../core/monitor.js';
import { barChart } from '../output/chart.js';
import { fmtBytes, fmtTime, table } from '../output/format.js';

/** The `Key: value` lines of a run's summary (task show, restore show); `in`/`out` say what they count. */
export function usageFields(
  x: { cpuSeconds?: number | null; childCpuSeconds?: number | null; cpuAvgPct?: number | null; cpuPeakPct?: number | null; rssPeakBytes?: number | null; bytesIn?: number | null; bytesOut?: number | null },
  words: { in: string; out: string },
): [string, string][] {
  return [
    ['CPU', x.cpuSeconds === null || x.cpuSeconds === undefined ? '-' : `${x.cpuSeconds.toFixed(2)} s, ${(x.childCpuSeconds ?? 0).toFixed(2)} s of it programs (avg ${x.cpuAvgPct ?? 0}%, peak ${x.cpuPeakPct ?? 0}%; 100% = one core)`],
    ['Peak RSS', fmtBytes(x.rssPeakBytes)],
    ['Bytes in', x.bytesIn === null || x.bytesIn === undefined ? '-' : `${fmtBytes(x.bytesIn)} ${words.in}`],
    ['Bytes out', x.bytesOut === null || x.bytesOut === undefined ? '-' : `${fmtBytes(x.bytesOut)} ${words.out}`],
  ];
}

/** The throughput line of task show: bytes/s per stage, in data-path order. */
export function throughputText(t: Record<string, number> | null): string {
  if (!t) return '-';
  return Object.entries(t)
    .map(([k, v]) => `${k} ${fmtBytes(v)}/s`)
    .join(', ');
}

const NAMES: Record<MonitorMetric, string> = { cpu: 'CPU', mem: 'memory (RSS)', in: 'bytes in', out: 'bytes out', compress: 'compress throughput', encrypt: 'encrypt throughput' };

function formatter(unit: MonitorResult['unit']): (v: number) => string {
  if (unit === '%') return (v) => `${v >= 100 ? Math.round(v) : Math.round(v * 10) / 10}%`;
  if (unit === 'bytes') return (v) => fmtBytes(Math.round(v));
  return (v) => `${fmtBytes(Math.round(v))}/s`;
}

export function renderMonitor(x: MonitorResult, width: number): string {
  const out = [`plan ${x.plan} (${x.sourceKind} ${x.backupType}): ${NAMES[x.metric]} since ${fmtTime(x.since)}`, `${x.description}`];
  if (x.samples.length === 0) {
    out.push('', x.runs.length ? `no samples of its ${x.runs.length} run(s) in the window (recorded before monitoring existed)` : 'no tasks or restores in the window');
    return out.join('\n');
  }
  if (!x.measured[x.metric]) {
    const others = (Object.keys(x.measured) as MonitorMetric[]).filter((m) => x.measured[m]);
    out.push('', `no ${NAMES[x.metric]} measured for this plan's runs in the window${others.length ? `; measured: ${others.map((m) => `--metric ${m}`).join(', ')}` : ''}`);
  } else {
    const starts: number[] = [];
    x.series.forEach((p, i) => {
      if (i === 0 || x.series[i - 1]!.run !== p.run) starts.push(i);
    });
    out.push(
      '',
      barChart(
        x.series.map((p) => p.value),
        { width, format: formatter(x.unit), marks: starts, left: fmtTime(new Date(x.series[0]!.t).toISOString()), right: fmtTime(new Date(x.series.at(-1)!.t).toISOString()) },
      ),
      `${x.samples.length} samples, ${starts.length} run(s) (┴: a run starts; a column: the peak of its samples)`,
    );
  }
  const pct = (v: number | undefined) => (v === undefined ? '-' : `${v}%`);
  out.push(
    '',
    table(
      // What matters first: a narrow terminal loses the columns on the right.
      ['RUN', 'STARTED', 'CPU-S', 'PEAK', 'RSS', 'IN', 'OUT', 'AVG', 'STATUS'],
      x.runs.map((r) => [r.id, fmtTime(r.startedAt).slice(5), r.usage ? r.usage.cpuSeconds.toFixed(1) : '-', pct(r.usage?.cpuPeakPct), fmtBytes(r.usage?.rssPeakBytes), fmtBytes(r.usage?.bytesIn), fmtBytes(r.usage?.bytesOut), pct(r.usage?.cpuAvgPct), r.status]),
      width,
    ),
  );
  return out.join('\n');
}
