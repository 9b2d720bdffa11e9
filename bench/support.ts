// Shared helpers for benchmarks: timing with peak RSS (GNU time), medians, markdown tables.
import { execa } from 'execa';
import { writeFileSync, mkdirSync } from 'node:fs';

export interface Sample {
  seconds: number;
  maxRssMB: number;
}

/** Runs a shell command under /usr/bin/time; peak RSS is the largest process of the tree. */
export async function timed(cmd: string, env: NodeJS.ProcessEnv = {}, o: { retries?: number } = {}): Promise<Sample> {
  for (let left = o.retries ?? 0; left > 0; left--) {
    try {
      return await timed(cmd, env);
    } catch (e) {
      process.stdout.write(`\nretrying once more after a failure: ${String((e as Error).message).slice(0, 400)}\n`);
    }
  }
  const start = performance.now();
  const r = await execa('/usr/bin/time', ['-f', 'RSSKB=%M', 'bash', '-o', 'pipefail', '-c', cmd], { env: { ...process.env, ...env }, reject: false, all: true });
  const seconds = (performance.now() - start) / 1000;
  if (r.exitCode !== 0) throw new Error(`benchmark command failed (${r.exitCode}): ${cmd}\n${String(r.all).slice(-2000)}`);
  const m = /RSSKB=(\d+)/.exec(String(r.stderr));
  return { seconds, maxRssMB: m ? Number(m[1]) / 1024 : NaN };
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
