// The gateway's bandwidth cap is ONE budget for a whole daemon (issue 15): the real `dbs daemon
// --concurrency 2` runs two plans at once, each uploading an incompressible SQLite snapshot to
// an S3 pool bound through a recording TCP proxy in front of the test bed's RGW. After a
// warm-up, the rate on the wire (both directions) over a 15 s window, while both tasks run,
// must come to the cap within 5%, and each task's recorded rate to about half of it. The rate
// is the least-squares slope of 150 samples: the wire moves in 8 MiB parts, so a count
// between the window's two ends alone is off by up to a part per task (see below).
// test/storage/throttle.test.ts proves the same budget for drivers opened by core in one
// process; this proves the daemon's concurrent tasks spend it (one bucket per process,
// core/gateway.ts), not one budget each. The test takes ~25 s.
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/store/catalog.js';
import { dbs } from '../support/cli.js';
import { daemon } from '../support/daemon.js';
import { bigSqlite } from '../support/fixtures.js';
import { s3ProxyForFile } from '../support/proxy.js';
import { tempDir, testbed } from '../support/testbed.js';

const MiB = 1024 * 1024;
const CAP_MIB = 8;
const WARMUP_MS = 2500;
const WINDOW_MS = 15_000;
/** Each source: two of them at half the cap each take ~20 s, well past warm-up + window (17.5 s). */
const SOURCE_MIB = 80;
/** The S3 driver's part size (config.ts default): the step the wire moves in. */
const PART_MIB = 8;

const s3Proxy = s3ProxyForFile();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Least-squares slope of bytes over seconds: the rate, less sensitive than two end points to a part in flight at an edge. */
function slope(samples: { t: number; bytes: number }[]): number {
  const n = samples.length;
  const mt = samples.reduce((a, s) => a + s.t, 0) / n;
  const mb = samples.reduce((a, s) => a + s.bytes, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.t - mt) * (s.bytes - mb);
    den += (s.t - mt) ** 2;
  }
  return num / den;
}

describe('the gateway cap in a daemon', () => {
  it(`two concurrent tasks of one daemon share one ${CAP_MIB} MiB/s budget on the wire (within 5% over 15 s), each at about half`, async () => {
    const home = tempDir('home');
    const s3 = testbed().s3;
    const env = { S3_SECRET: s3.secretKey };
    const run = (args: string[]) => dbs(args, { home, env });
    expect((await run(['gateway', 'create', '--ip', '127.0.0.2', '--bandwidth', `${CAP_MIB}MiB/s`])).code).toBe(0);
    const bind = await run(['pool', 'bind', 'p', '--type', 's3', '--endpoint', s3Proxy().endpoint, '--prefix', `dcap-${process.pid}-${Date.now()}`, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET']);
    expect(bind.code, bind.stderr).toBe(0);
    const sources = [bigSqlite(SOURCE_MIB), bigSqlite(SOURCE_MIB)];
    // Both plans come due at the same second, once.
    const at = new Date(Date.now() + 2000).toISOString();
    for (const [i, src] of sources.entries()) {
      const r = await run(['plan', 'create', `cap${i}`, '--source', `sqlite://${src}`, '--pool', 'p', '--once', at, '--compress', 'none']);
      expect(r.code, r.stderr).toBe(0);
    }
    const peersBefore = s3Proxy().peers.length;
    const d = daemon(home, ['--concurrency', '2']);
    let stopped = false;
    try {
      for (const plan of ['cap0', 'cap1']) await d.waitFor((l) => l.event === 'task.started' && l.plan === plan, 20_000);
      await sleep(WARMUP_MS);
      const count = () => s3Proxy().upBytes + s3Proxy().downBytes;
      const samples: { t: number; bytes: number }[] = [];
      const wall0 = Date.now();
      const t0 = performance.now();
      const b0 = count();
      while (performance.now() - t0 < WINDOW_MS) {
        samples.push({ t: (performance.now() - t0) / 1000, bytes: count() });
        await sleep(100);
      }
      const seconds = (performance.now() - t0) / 1000;
      const bytes = count() - b0;
      const wall1 = Date.now();
      samples.push({ t: seconds, bytes: b0 + bytes });
      const rate = bytes / seconds / MiB;
      const fitted = slope(samples) / MiB;

      for (const plan of ['cap0', 'cap1']) await d.waitFor((l) => l.plan === plan && typeof l.event === 'string' && /^task\.(succeeded|failed|interrupted)$/.test(l.event), 60_000);
      const s = await d.stop();
      stopped = true;
      expect(s.code, s.stderr).toBe(0);
      expect(d.lines.filter((l) => l.event === 'task.succeeded')).toHaveLength(2);

      const catalog = Catalog.open(home);
      const tasks = catalog.listTasks({ limit: 10 });
      catalog.close();
      expect(tasks).toHaveLength(2);
      const shown = [];
      for (const t of tasks) {
        const j = (await run(['--json', 'task', 'show', t.id])).json();
        const text = (await run(['task', 'show', t.id])).stdout;
        shown.push({ plan: t.planName, startedAt: t.startedAt!, endedAt: t.endedAt!, storedRate: j.storedRate as number, durationMs: j.durationMs as number, rateLine: /Rate:.*/.exec(text)?.[0] ?? '' });
      }
      const shares = shown.map((t) => `${t.plan} ${(t.storedRate / MiB).toFixed(2)} MiB/s over ${(t.durationMs / 1000).toFixed(1)} s ("${t.rateLine.trim()}")`).join(', ');
      console.log(`daemon cap ${CAP_MIB} MiB/s: ${rate.toFixed(2)} MiB/s on the wire over ${seconds.toFixed(1)} s (${(bytes / MiB).toFixed(1)} MiB; fitted slope ${fitted.toFixed(2)} MiB/s); tasks: ${shares}`);

      // Both tasks ran during the whole window: the budget was shared, not one task's alone.
      for (const t of shown) {
        expect(Date.parse(t.startedAt), `${t.plan} started before the window`).toBeLessThan(wall0);
        expect(Date.parse(t.endedAt), `${t.plan} ended after the window`).toBeGreaterThan(wall1);
      }
      // One budget: the two together on the wire hold the cap (one budget each would be 2x).
      // The cap meters bytes as they enter the S3 driver, which sends them in 8 MiB parts: on
      // the wire each task moves in 8 MiB steps, so a count between two instants is off by up
      // to one part per task (2 x 8 MiB over 120 MiB: 13% at 15 s). The rate is the fitted
      // slope over 150 samples, held to 5%; the plain end-point count to that part bound.
      expect(fitted, `fitted ${fitted.toFixed(2)} MiB/s on the wire, cap ${CAP_MIB} MiB/s`).toBeGreaterThan(CAP_MIB * 0.95);
      expect(fitted, `fitted ${fitted.toFixed(2)} MiB/s on the wire, cap ${CAP_MIB} MiB/s`).toBeLessThan(CAP_MIB * 1.05);
      const partBound = (2 * PART_MIB) / seconds;
      expect(Math.abs(rate - CAP_MIB), `${rate.toFixed(2)} MiB/s between the window's ends, cap ${CAP_MIB} MiB/s ± ${partBound.toFixed(2)}`).toBeLessThan(partBound);
      // Each task's shown rate is about half the cap; both together at most the cap.
      for (const t of shown) {
        expect(t.storedRate / MiB, shares).toBeGreaterThan(CAP_MIB * 0.4);
        expect(t.storedRate / MiB, shares).toBeLessThan(CAP_MIB * 0.6);
        expect(t.rateLine).toMatch(/Rate:\s+[345](\.\d+)? MiB\/s stored/);
      }
      expect(shown.reduce((a, t) => a + t.storedRate, 0) / MiB).toBeLessThan(CAP_MIB * 1.05);
      // The daemon's connections left from the gateway's address.
      const peers = s3Proxy().peers.slice(peersBefore);
      expect(peers.length).toBeGreaterThan(0);
      for (const p of peers) expect(p.replace(/^::ffff:/, '')).toBe('127.0.0.2');
    } finally {
      if (!stopped) await d.stop('SIGKILL');
    }
  }, 90_000);
});
