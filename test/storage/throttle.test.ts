// The gateway's bandwidth cap measured on the wire against the real S3 server of the test
// bed: three pool drivers opened by core as three concurrent tasks would (one uploading, two
// downloading) share the process's one budget; a TCP proxy in front of the server counts the
// bytes in both directions. After a warm-up (socket buffers fill), the rate over 30 s must be
// within 5% of the cap at 10 MiB/s. Each case takes ~35 s.
//
// 100 MiB/s cannot be measured against the test bed's S3 server on this 2-core machine: RGW and
// the counting proxy together move ~93 MiB/s with the cap at 900 MiB/s on a quiet machine, and
// 35-70 MiB/s while the rest of the suite runs. The 100 MiB/s case measures the same budget and
// wrapper (ThrottledDriver over one TokenBucket) around local-pool drivers instead, counting the
// bytes the wrapped drivers hand over; the S3 wire at 100 MiB/s stays unproven here.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config.js';
import { makeCoreContext, type OwnedContext } from '../../src/core/context.js';
import { openPool } from '../../src/core/pools.js';
import type { PoolDriver } from '../../src/storage/types.js';
import { systemClock } from '../../src/store/catalog.js';
import { LocalDriver } from '../../src/storage/local.js';
import { TokenBucket, throttleWrapper } from '../../src/storage/throttle.js';
import { dbs } from '../support/cli.js';
import { s3ProxyForFile } from '../support/proxy.js';
import { tempDir, testbed } from '../support/testbed.js';

const MiB = 1024 * 1024;
const WARMUP_MS = 3000;
const WINDOW_MS = 30_000;

const s3Proxy = s3ProxyForFile();

/** An endless body of 1 MiB chunks (one random buffer, reused) until the signal aborts. */
async function* endless(signal: AbortSignal): AsyncGenerator<Buffer> {
  const chunk = randomBytes(MiB);
  while (!signal.aborted) yield chunk;
}

/** Puts objects of `size` bytes one after another (deleting each) until the signal aborts. */
async function uploader(d: PoolDriver, prefix: string, signal: AbortSignal): Promise<void> {
  for (let i = 0; !signal.aborted; i++) {
    const key = `${prefix}/up-${i}`;
    async function* body(): AsyncGenerator<Buffer> {
      let n = 0;
      for await (const c of endless(signal)) {
        yield c;
        if ((n += c.length) >= 32 * MiB) return;
      }
    }
    await d.put(key, body(), { signal });
    await d.delete(key);
  }
}

/** Reads the object again and again until the signal aborts. */
async function downloader(d: PoolDriver, key: string, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    const s = await d.get(key, { signal });
    for await (const _ of s) {
      if (signal.aborted) break;
    }
  }
}

describe('gateway bandwidth cap', () => {
  for (const capMiB of [10]) {
    it(`holds ${capMiB} MiB/s within 5% over 30 s for one upload and two downloads together`, async () => {
      const home = tempDir('home');
      const s3 = testbed().s3;
      const env = { S3_SECRET: s3.secretKey };
      expect((await dbs(['gateway', 'create', '--ip', '127.0.0.2', '--bandwidth', `${capMiB}MiB/s`], { home })).code).toBe(0);
      const prefix = `cap-${randomBytes(4).toString('hex')}`;
      const b = await dbs(['pool', 'bind', 's3', '--type', 's3', '--endpoint', s3Proxy().endpoint, '--prefix', prefix, '--access-key', s3.accessKey, '--secret-key-env', 'S3_SECRET'], { home, env });
      expect(b.code, b.stderr).toBe(0);

      const settings = await loadSettings({ flags: { home }, env: {}, cwd: home });
      const ctx: OwnedContext = makeCoreContext({ settings, signal: new AbortController().signal, clock: systemClock, env: {}, cwd: home, yes: false, report: () => undefined });
      const pool = ctx.catalog().findPool('s3')!;
      const drivers = await Promise.all([0, 1, 2].map(() => openPool(ctx, pool)));
      const seed = 'seed.bin';
      await drivers[0]!.put(seed, randomBytes(16 * MiB));

      const stop = new AbortController();
      const upBefore = { up: s3Proxy().upBytes, down: s3Proxy().downBytes };
      const work = [uploader(drivers[0]!, 'up', stop.signal), downloader(drivers[1]!, seed, stop.signal), downloader(drivers[2]!, seed, stop.signal)].map((p) =>
        p.catch((e: unknown) => {
          if (!stop.signal.aborted) throw e;
        }),
      );
      const failed = Promise.race(work.map((p) => p.then(() => new Promise<never>(() => undefined))));
      const sleep = (ms: number) => Promise.race([new Promise((r) => setTimeout(r, ms)), failed]);
      try {
        await sleep(WARMUP_MS);
        const b0 = s3Proxy().upBytes + s3Proxy().downBytes;
        const up0 = s3Proxy().upBytes;
        const t0 = performance.now();
        await sleep(WINDOW_MS);
        const bytes = s3Proxy().upBytes + s3Proxy().downBytes - b0;
        const up = s3Proxy().upBytes - up0;
        const seconds = (performance.now() - t0) / 1000;
        const rate = bytes / seconds / MiB;
        console.log(`cap ${capMiB} MiB/s: ${rate.toFixed(2)} MiB/s on the wire over ${seconds.toFixed(1)} s (${(up / MiB).toFixed(0)} MiB up, ${((bytes - up) / MiB).toFixed(0)} MiB down)`);
        // Below the cap means the machine could not move that much (a loaded 2-core box moves
        // ~35-55 MiB/s through RGW and this proxy even uncapped); the log line above says how much.
        expect(rate, `${rate.toFixed(1)} MiB/s on the wire, cap ${capMiB} MiB/s`).toBeGreaterThan(capMiB * 0.95);
        expect(rate).toBeLessThan(capMiB * 1.05);
        // One budget for both directions: each moved a real share of it.
        expect(up).toBeGreaterThan(bytes * 0.1);
        expect(bytes - up).toBeGreaterThan(bytes * 0.1);
        expect(s3Proxy().upBytes - upBefore.up).toBeGreaterThan(0);
      } finally {
        stop.abort();
        await Promise.allSettled(work);
        await drivers[0]!.delete(seed).catch(() => undefined);
        await Promise.all(drivers.map((d) => d.close()));
        ctx.close();
      }
    }, 120_000);
  }

  it('holds 100 MiB/s within 5% over 30 s for one upload and two downloads together (local drivers, same wrapper)', async () => {
    const root = tempDir('pool');
    const bucket = new TokenBucket(100 * MiB);
    const wrap = throttleWrapper(bucket);
    const drivers = [0, 1, 2].map(() => wrap(new LocalDriver(root)));
    await drivers[0]!.put('seed.bin', randomBytes(16 * MiB));
    let counted = 0;
    let up = 0;
    const stop = new AbortController();
    async function* counting(signal: AbortSignal): AsyncGenerator<Buffer> {
      let n = 0;
      for await (const c of endless(signal)) {
        yield c;
        counted += c.length;
        up += c.length;
        if ((n += c.length) >= 32 * MiB) return;
      }
    }
    const uploads = (async () => {
      for (let i = 0; !stop.signal.aborted; i++) {
        await drivers[0]!.put(`up-${i}`, counting(stop.signal), { signal: stop.signal });
        await drivers[0]!.delete(`up-${i}`);
      }
    })();
    const downloads = [1, 2].map(async (n) => {
      while (!stop.signal.aborted) {
        const st = await drivers[n]!.get('seed.bin', { signal: stop.signal });
        for await (const c of st) {
          counted += (c as Buffer).length;
          if (stop.signal.aborted) break;
        }
      }
    });
    const work = [uploads, ...downloads].map((p) =>
      p.catch((e: unknown) => {
        if (!stop.signal.aborted) throw e;
      }),
    );
    try {
      await new Promise((r) => setTimeout(r, WARMUP_MS));
      const c0 = counted;
      const u0 = up;
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, WINDOW_MS));
      const bytes = counted - c0;
      const upBytes = up - u0;
      const seconds = (performance.now() - t0) / 1000;
      const rate = bytes / seconds / MiB;
      console.log(`cap 100 MiB/s (local drivers): ${rate.toFixed(2)} MiB/s over ${seconds.toFixed(1)} s (${(upBytes / MiB).toFixed(0)} MiB up)`);
      expect(rate).toBeGreaterThan(95);
      expect(rate).toBeLessThan(105);
      expect(upBytes).toBeGreaterThan(bytes * 0.1);
      expect(bytes - upBytes).toBeGreaterThan(bytes * 0.1);
    } finally {
      stop.abort();
      await Promise.allSettled(work);
      await Promise.all(drivers.map((d) => d.close()));
    }
  }, 120_000);
});
