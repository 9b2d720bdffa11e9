// Bandwidth rates (core/rate.ts) and the token bucket that enforces them (storage/throttle.ts).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DbsError } from '../../src/errors.js';
import { formatRate, parseRate } from '../../src/core/rate.js';
import { TokenBucket } from '../../src/storage/throttle.js';

describe('parseRate', () => {
  it.each([
    ['20MiB/s', 20 * 1024 * 1024],
    ['100Mbit/s', 12_500_000],
    ['1Gbit/s', 125_000_000],
    ['500KB/s', 500_000],
    ['500kB/s', 500_000],
    ['1.5 GiB/s', 1.5 * 1024 ** 3],
    ['64KiB', 65536],
    ['2048B/s', 2048],
    ['8Mbitps', 1_000_000],
    [' 10 MiB / s ', 10 * 1024 * 1024],
  ])('%s is %d bytes/s', (text, bytes) => {
    expect(parseRate(text)).toBe(bytes);
  });

  it.each(['', 'fast', '20', '20MiB/h', '20 Mib/s', '-5MiB/s', '1e6B/s', '20MiB/s/s', '0B/s', '100B/s', '2TiB/s', 'NaNMB/s'])('%j is a usage error naming the flag', (text) => {
    let err: unknown;
    try {
      parseRate(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DbsError);
    expect((err as DbsError).exitCode).toBe(2);
    expect((err as DbsError).message).toContain('--bandwidth');
    expect((err as DbsError).hint).toMatch(/20MiB\/s|omit/);
  });

  it('formats rates in binary units', () => {
    expect(formatRate(20 * 1024 * 1024)).toBe('20 MiB/s');
    expect(formatRate(12_500_000)).toBe('11.9 MiB/s');
    expect(formatRate(1536)).toBe('1.5 KiB/s');
    expect(formatRate(512)).toBe('512 B/s');
  });
});

describe('TokenBucket', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A clock the test moves, together with the (fake) timers. */
  function clock() {
    let t = 0;
    return {
      now: () => t,
      advance: async (ms: number) => {
        t += ms;
        await vi.advanceTimersByTimeAsync(ms);
      },
    };
  }
  const settle = () => vi.advanceTimersByTimeAsync(0);

  it('grants the burst at once, then only what the rate refilled, in FIFO order', async () => {
    const c = clock();
    const b = new TokenBucket(1_000_000, c.now); // burst 250 kB (a quarter second)
    await b.take(250_000);
    const order: number[] = [];
    const p1 = b.take(50_000).then(() => order.push(1));
    const p2 = b.take(10_000).then(() => order.push(2));
    await settle();
    expect(order).toEqual([]);
    await c.advance(50); // 50 kB refilled: the first waiter only
    expect(order).toEqual([1]);
    await c.advance(10);
    await Promise.all([p1, p2]);
    expect(order).toEqual([1, 2]);
    expect(b.granted).toBe(310_000);
  });

  it('a request larger than the burst goes into debt, so the long-run rate holds', async () => {
    const c = clock();
    const b = new TokenBucket(100_000, c.now); // burst 64 KiB (the minimum)
    await b.take(1_000_000); // bucket full: granted, 935 kB in debt
    let done = false;
    const p = b.take(1).then(() => (done = true));
    await c.advance(9_000);
    expect(done).toBe(false);
    await c.advance(400);
    await p;
    expect(done).toBe(true);
  });

  it('an aborted wait rejects with the reason and leaves the queue', async () => {
    const c = clock();
    const b = new TokenBucket(10_000, c.now);
    await b.take(65_536);
    const ac = new AbortController();
    const p = b.take(1000, ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    await c.advance(200);
    await b.take(1000); // not stuck behind the aborted waiter
    expect(b.granted).toBe(66_536);
  });

  it('setRate applies to waiters', async () => {
    const c = clock();
    const b = new TokenBucket(1000, c.now);
    await b.take(65_536);
    const p = b.take(10_000);
    b.setRate(10_000_000);
    await c.advance(2);
    await p;
    expect(b.rate).toBe(10_000_000);
  });
});
