// Shared helpers for benchmarks: timing with peak RSS (GNU time), medians, markdown tables.
import { execa } from 'execa';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * How a user's `dbs` starts: the pinned node with the flags of bin/dbs.js's shebang line
 * (`#!/usr/bin/env -S node FLAGS`; the single executable has them too), then the script. A bench
 * that ran `node bin/dbs.js` would measure a process without them.
 */
export const DBS_BIN = new URL('../bin/dbs.js', import.meta.url).pathname;
export const DBS_NODE_FLAGS: string[] = (/^#!\/usr\/bin\/env -S node(.*)$/.exec(readFileSync(DBS_BIN, 'utf8').split('\n', 1)[0]!)?.[1] ?? '').split(' ').filter(Boolean);
export const DBS = [process.execPath, ...DBS_NODE_FLAGS, DBS_BIN].join(' ');

/** Debian's awscli (2.x, the peer a user on this machine would pick), not a pip one earlier on PATH; BENCH_AWS overrides. */
export const AWS_CLI = process.env.BENCH_AWS ?? (existsSync('/usr/bin/aws') ? '/usr/bin/aws' : 'aws');

export interface Sample {
  seconds: number;
  maxRssMB: number;
  /** CPU seconds by program (see TreeCpu), when asked for with `cpu`. */
  cpu?: Record<string, number>;
}

/** Runs a shell command under /usr/bin/time; peak RSS is the largest process of the tree. */
export async function timed(cmd: string, env: NodeJS.ProcessEnv = {}, o: { retries?: number; cpu?: Record<string, number> } = {}): Promise<Sample> {
  for (let left = o.retries ?? 0; left > 0; left--) {
    try {
      return await timed(cmd, env, { cpu: o.cpu });
    } catch (e) {
      process.stdout.write(`\nretrying once more after a failure: ${String((e as Error).message).slice(0, 400)}\n`);
    }
  }
  const start = performance.now();
  const sub = execa('/usr/bin/time', ['-f', 'RSSKB=%M', 'bash', '-o', 'pipefail', '-c', cmd], { env: { ...process.env, ...env }, reject: false, all: true });
  const cpu = o.cpu && sub.pid !== undefined ? new TreeCpu(sub.pid, o.cpu) : undefined;
  const r = await sub;
  const seconds = (performance.now() - start) / 1000;
  const cpuSeconds = cpu?.stop();
  if (r.exitCode !== 0) throw new Error(`benchmark command failed (${r.exitCode}): ${cmd}\n${String(r.all).slice(-2000)}`);
  const m = /RSSKB=(\d+)/.exec(String(r.stderr));
  return { seconds, maxRssMB: m ? Number(m[1]) / 1024 : NaN, ...(cpuSeconds ? { cpu: cpuSeconds } : {}) };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface Row {
  name: string;
  samples: Sample[];
  bytes?: number;
}

export function report(title: string, rows: Row[], baseline: string, rawBytes: number, notes: string[] = []): string {
  const base = rows.find((r) => r.name === baseline)!;
  const baseS = median(base.samples.map((s) => s.seconds));
  const lines = [
    `## ${title}`,
    '',
    `Raw size ${(rawBytes / 1e6).toFixed(0)} MB; ${base.samples.length} runs each, interleaved (one of each per round), medians; throughput relative to "${baseline}" (>1 is faster). "Per round" is the baseline's time over the row's within each round: the spread a single run can show on this machine.`,
    '',
    '| pipeline | median s | MB/s of raw | vs baseline | per round (min, median, max) | peak RSS MB | output MB |',
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const s = median(r.samples.map((x) => x.seconds));
      const rounds = r.samples.map((x, i) => base.samples[i]!.seconds / x.seconds).sort((a, b) => a - b);
      const perRound = rounds.length ? `${rounds[0]!.toFixed(2)}, ${median(rounds).toFixed(2)}, ${rounds.at(-1)!.toFixed(2)}` : '-';
      return `| ${r.name} | ${s.toFixed(2)} | ${(rawBytes / 1e6 / s).toFixed(0)} | ${(baseS / s).toFixed(2)}x | ${perRound} | ${median(r.samples.map((x) => x.maxRssMB)).toFixed(0)} | ${r.bytes !== undefined ? (r.bytes / 1e6).toFixed(0) : '-'} |`;
    }),
    '',
    ...notes,
    '',
  ];
  return lines.join('\n');
}

export function save(name: string, text: string): void {
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/${name}.md`, import.meta.url), text);
  process.stdout.write(`\n${text}\n`);
}

/** Clock ticks per second of /proc's utime/stime (USER_HZ; 100 on every Linux port we run on). */
const TICKS = 100;

interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  ticks: number;
}

function readStat(pid: number | string): ProcStat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const close = s.lastIndexOf(')');
    const f = s.slice(close + 2).split(' ');
    return { pid: Number(pid), ppid: Number(f[1]), comm: s.slice(s.indexOf('(') + 1, close), ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined; // gone between readdir and read
  }
}

/**
 * CPU seconds per program of a running process tree, sampled from /proc every 100 ms (a
 * process that exits between samples loses at most its last 100 ms), plus the CPU that
 * long-lived processes outside the tree (a database server) spent meanwhile.
 */
export class TreeCpu {
  readonly #root: number;
  readonly #outside: Map<string, { pid: number; start: number }>;
  readonly #seen = new Map<number, { comm: string; ticks: number }>();
  readonly #timer: NodeJS.Timeout;

  constructor(root: number, outside: Record<string, number> = {}) {
    this.#root = root;
    this.#outside = new Map(Object.entries(outside).map(([name, pid]) => [name, { pid, start: readStat(pid)?.ticks ?? 0 }]));
    this.#timer = setInterval(() => this.#sample(), 100);
    this.#sample();
  }

  #sample(): void {
    const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(readStat).filter((s): s is ProcStat => s !== undefined);
    const tree = new Set([this.#root]);
    // Parents come before children in pid order almost always; loop until no change for the rest.
    for (let grew = true; grew; ) {
      grew = false;
      for (const s of all) if (!tree.has(s.pid) && tree.has(s.ppid)) (tree.add(s.pid), (grew = true));
    }
    // Node names its main thread, and so its process, "MainThread".
    for (const s of all) if (tree.has(s.pid)) this.#seen.set(s.pid, { comm: s.comm === 'MainThread' ? 'node' : s.comm, ticks: s.ticks });
  }

  /** Stops sampling; CPU seconds by program name (the tree's) and by the names given for outside pids. */
  stop(): Record<string, number> {
    this.#sample();
    clearInterval(this.#timer);
    const out: Record<string, number> = {};
    for (const { comm, ticks } of this.#seen.values()) out[comm] = (out[comm] ?? 0) + ticks / TICKS;
    for (const [name, { pid, start }] of this.#outside) out[name] = ((readStat(pid)?.ticks ?? start) - start) / TICKS;
    return out;
  }
}

/** A markdown table of where the time went: wall seconds and median CPU seconds per program. */
export function cpuReport(rows: Row[], note: string): string {
  const progs = [...new Set(rows.flatMap((r) => r.samples.flatMap((s) => Object.keys(s.cpu ?? {}))))].filter((p) =>
    rows.some((r) => median(r.samples.map((s) => s.cpu?.[p] ?? 0)) >= 0.1),
  );
  const lines = [
    `| pipeline | wall s | ${progs.map((p) => `${p} CPU s`).join(' | ')} |`,
    `|---|---|${progs.map(() => '---|').join('')}`,
    ...rows.map((r) => `| ${r.name} | ${median(r.samples.map((s) => s.seconds)).toFixed(1)} | ${progs.map((p) => median(r.samples.map((s) => s.cpu?.[p] ?? 0)).toFixed(1)).join(' | ')} |`),
    '',
    note,
    '',
  ];
  return lines.join('\n');
}
