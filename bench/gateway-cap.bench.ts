// The gateway's bandwidth cap on the S3 wire at 100 MiB/s (issue: "held within ±5% over 30 s
// at 10 MiB/s and at 100 MiB/s against a real S3 server"). The suite measures 10 MiB/s through
// a counting proxy (test/storage/throttle.test.ts); at 100 MiB/s that proxy is itself the
// limit on this 2-core machine, so here the bytes are counted by the kernel instead: nftables
// counters on the TCP traffic between the gateway address (127.0.0.2) and the S3 server's
// port, both directions (IP-level bytes: headers add <0.1% at loopback's 64 KiB MTU).
// Workload as in the suite: one uploader and two downloaders, three pool drivers opened by
// core as three concurrent tasks would, sharing the process's one budget. Each round measures
// the same workload uncapped (what the machine can move) and capped at 100 MiB/s.
//   npm run bench:gateway   (root: needs nft; BENCH_RUNS=3, BENCH_CAP_MIB=100)
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadSettings } from '../src/config.js';
import { makeCoreContext } from '../src/core/context.js';
import { openPool } from '../src/core/pools.js';
import { systemClock } from '../src/store/catalog.js';
import { dbs } from '../test/support/cli.js';
import { startS3, tempDir, type S3Server } from '../test/support/testbed.js';
import { downloader, uploader, wireCounter, type WireCounter } from '../test/support/traffic.js';
import { median, save } from './support.js';

const MiB = 1024 * 1024;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CAP = Number(process.env.BENCH_CAP_MIB ?? 100);
const WARMUP_MS = 3000;
const WINDOW_MS = 30_000;
let s3: S3Server;
let wire: WireCounter;

beforeAll(async () => {
  s3 = await startS3();
  wire = wireCounter('127.0.0.2', Number(new URL(s3.endpoint).port));
}, 120_000);

afterAll(async () => {
  wire?.close();
  await s3?.stop();
});

/** One measured window of the workload through a home whose gateway has `bandwidth` (or none). */
async function measure(bandwidth: string | undefined): Promise<{ rate: number; upShare: number }> {
  const home = tempDir('home');
  const env = { S3_SECRET: s3.secretKey };
  const g = await dbs(['gateway', 'create', '--ip', '127.0.0.2', ...(bandwidth ? ['--bandwidth', bandwidth] : [])], { home });
  expect(g.code, g.stderr).toBe(0);
  const prefix = `cap-${randomBytes(4).toString('hex')}`;
  const b = await dbs(['pool', 'bind', 's3', '--type', 's3', '--endpoint', s3.endpoint, '--prefix', prefix, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'], { home, env });
  expect(b.code, b.stderr).toBe(0);
  const settings = await loadSettings({ flags: { home }, env: {}, cwd: home });
  const ctx = makeCoreContext({ settings, signal: new AbortController().signal, clock: systemClock, env: {}, cwd: home, yes: false, report: () => undefined });
  const pool = ctx.catalog().findPool('s3')!;
  const drivers = await Promise.all([0, 1, 2].map(() => openPool(ctx, pool)));
  await drivers[0]!.put('seed.bin', randomBytes(16 * MiB));
  const stop = new AbortController();
  let up = 0;
  const work = [uploader(drivers[0]!, 'up', stop.signal), downloader(drivers[1]!, 'seed.bin', stop.signal), downloader(drivers[2]!, 'seed.bin', stop.signal)].map((p) =>
    p.catch((e: unknown) => {
      if (!stop.signal.aborted) throw e;
    }),
  );
  try {
    await new Promise((r) => setTimeout(r, WARMUP_MS));
    const b0 = wire.bytes();
    const u0 = wire.up();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, WINDOW_MS));
    const bytes = wire.bytes() - b0;
    up = wire.up() - u0;
    const seconds = (performance.now() - t0) / 1000;
    return { rate: bytes / seconds / MiB, upShare: up / bytes };
  } finally {
    stop.abort();
    await Promise.allSettled(work);
    await drivers[0]!.delete('seed.bin').catch(() => undefined);
    await Promise.all(drivers.map((d) => d.close()));
    ctx.close();
  }
}

it(`gateway cap ${CAP} MiB/s on the S3 wire`, async () => {
  const uncapped: number[] = [];
  const capped: number[] = [];
  const lines: string[] = [];
  for (let r = 1; r <= RUNS; r++) {
    const u = await measure(undefined);
    const c = await measure(`${CAP}MiB/s`);
    uncapped.push(u.rate);
    capped.push(c.rate);
    lines.push(`| ${r} | ${u.rate.toFixed(2)} | ${c.rate.toFixed(2)} | ${((c.rate / CAP - 1) * 100).toFixed(2)}% | ${(c.upShare * 100).toFixed(0)}% |`);
    console.log(lines.at(-1));
  }
  const text = [
    `# Gateway bandwidth cap at ${CAP} MiB/s on the S3 wire (Ceph RGW 16, memstore)`,
    '',
    `One uploader and two downloaders (three pool drivers, one process budget), ${WARMUP_MS / 1000} s warm-up, then ${WINDOW_MS / 1000} s counted by`,
    'nftables on the TCP traffic between the gateway address 127.0.0.2 and the S3 port (both directions,',
    `IP-level bytes). Node ${process.version}. Target: within ±5% of the cap.`,
    '',
    '| round | uncapped MiB/s | capped MiB/s | capped vs cap | upload share (capped) |',
    '|---|---|---|---|---|',
    ...lines,
    '',
    `Medians: uncapped ${median(uncapped).toFixed(2)} MiB/s, capped ${median(capped).toFixed(2)} MiB/s (${((median(capped) / CAP - 1) * 100).toFixed(2)}% from the cap).`,
    '',
  ].join('\n');
  save(`gateway-cap-${CAP}`, text);
  for (const c of capped) {
    expect(c).toBeGreaterThan(CAP * 0.95);
    expect(c).toBeLessThan(CAP * 1.05);
  }
});
