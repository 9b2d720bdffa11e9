// Benchmark: `dbs daemon` with BENCH_PLANS plans (default 1,000). Fills a catalog with that
// many active plans (SQLite sources, daily schedules spread over the day so none is due while
// it is measured), starts the daemon (the real Node binary, bin/dbs.js), lets it settle for
// BENCH_SETTLE_S (default 5 s), then samples /proc for BENCH_IDLE_S (default 20 s): idle CPU %
// (user + sys ticks over the interval, 100 = one core) and RSS at the end.
// Targets (issue 17): idle CPU < 1 %, RSS <= 120 MB. `npm run bench:daemon`.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { Catalog } from '../src/store/catalog.js';
import { tempDir } from '../test/support/testbed.js';
import { save, DBS_NODE_FLAGS } from './support.js';

const PLANS = Number(process.env.BENCH_PLANS ?? 1000);
const SETTLE_S = Number(process.env.BENCH_SETTLE_S ?? 5);
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 20);
const bin = new URL('../bin/dbs.js', import.meta.url).pathname;
const node = process.execPath;
const TICK = 100; // USER_HZ on Linux

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

it(`daemon with ${PLANS} plans: idle CPU and RSS`, async () => {
  const work = process.env.BENCH_KEEP ?? tempDir('bench-daemon');
  const home = join(work, 'home');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const c = Catalog.open(home);
  c.insertPool({ id: 'pool-aaaaaaaaaa', name: 'disk', type: 'local', config: { path: join(work, 'pool') }, remark: '' });
  const now = Date.now();
  c.transaction(() => {
    for (let i = 0; i < PLANS; i++) {
      // Daily at a minute of the day spread over 24 h, skipping the next hour (nothing runs).
      const minuteOfDay = (Math.floor(now / 60_000) + 60 + Math.floor((i * (23 * 60)) / PLANS)) % 1440;
      const at = `${String(Math.floor(minuteOfDay / 60)).padStart(2, '0')}:${String(minuteOfDay % 60).padStart(2, '0')}`;
      c.insertPlan({
        id: `plan-${i.toString(16).padStart(10, '0')}`,
        name: `p${i}`,
        status: 'active',
        pauseReason: '',
        sourceKind: 'sqlite',
        source: { url: `sqlite://${join(work, `src${i}.db`)}` },
        backupType: 'snapshot',
        selection: {},
        poolId: 'pool-aaaaaaaaaa',
        schedule: { kind: 'every', every: 'daily', at, expr: `${minuteOfDay % 60} ${Math.floor(minuteOfDay / 60)} * * *`, tz: 'UTC', since: new Date(now).toISOString() },
        retention: { keepLast: 7 },
        compression: 'zstd',
        options: {},
        remark: '',
      });
    }
  });
  c.close();
  const child = spawn(node, [...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), ...DBS_NODE_FLAGS, bin, 'daemon', '--log-format', 'json'], { env: { ...process.env, DBS_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const pid = child.pid!;
  try {
    await sleep(SETTLE_S * 1000);
    expect(child.exitCode, log.slice(-2000)).toBeNull();
    const rssSettled = rssMB(pid);
    const t0 = cpuTicks(pid);
    const w0 = performance.now();
    await sleep(IDLE_S * 1000);
    const cpuPct = ((cpuTicks(pid) - t0) / TICK / ((performance.now() - w0) / 1000)) * 100;
    const rss = rssMB(pid);
    const started = (log.match(/"event":"task\.started"|task\.(queued|started)/g) ?? []).length;
    const text = [
      `# dbs daemon with ${PLANS} plans: idle CPU and RSS`,
      '',
      `${PLANS} active plans (SQLite sources, daily, none due in the next hour), one local pool.`,
      `\`${node} bin/dbs.js daemon\` (the real Node binary, ${process.version}); settled ${SETTLE_S} s,`,
      `then CPU (user + sys of the daemon process, /proc/PID/stat) over ${IDLE_S} s and VmRSS at the end.`,
      'Targets (issue 17): idle CPU < 1 %, RSS <= 120 MB. Machine shared with other work (2 cores).',
      '',
      '| measure | value | target |',
      '|---|---|---|',
      `| idle CPU % over ${IDLE_S} s | ${cpuPct.toFixed(2)} | < 1 |`,
      `| RSS after ${SETTLE_S} s settle (MB) | ${rssSettled.toFixed(0)} | - |`,
      `| RSS after ${SETTLE_S + IDLE_S} s (MB) | ${rss.toFixed(0)} | <= 120 |`,
      `| tasks started while measured | ${started} | 0 |`,
      '',
    ].join('\n');
    save(`daemon-scale-${PLANS}`, text);
    console.log(text);
    expect(cpuPct).toBeGreaterThanOrEqual(0);
    expect(rss).toBeGreaterThan(0);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}, 600_000);
