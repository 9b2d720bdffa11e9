// core/cron-fields.ts against node-cron's parse(): the same fields for every simple expression
// (as sets: both sorted and unique), undefined for everything it leaves to node-cron.
import { parse, validate } from 'node-cron';
import { describe, expect, it } from 'vitest';
import { simpleCronFields } from '../../src/core/cron-fields.js';

const norm = (xs: (number | string)[]) => [...new Set(xs)].sort((a, b) => Number(a) - Number(b));

function same(expr: string) {
  const ours = simpleCronFields(expr);
  expect(ours, expr).toBeDefined();
  const theirs = parse(expr);
  for (const k of ['second', 'minute', 'hour', 'dayOfMonth', 'month', 'dayOfWeek'] as const) {
    expect(ours![k], `${expr}: ${k}`).toEqual(norm(theirs[k]));
  }
}

/** Every simple item form for a field with bounds lo..hi. */
function items(lo: number, hi: number): string[] {
  const mid = Math.floor((lo + hi) / 2);
  return ['*', `*/2`, `*/${hi}`, String(lo), String(hi), String(mid), `${lo}-${hi}`, `${lo}-${mid}/3`, `${mid}-${hi}/7`, `${lo},${mid},${hi}`, `${mid}-${mid}`, `${lo}-${mid},${hi}`, `*/5,${mid}`];
}

describe('simpleCronFields', () => {
  it('equals node-cron for every simple item in every field (5 and 6 fields)', () => {
    const fields: [number, number][] = [[0, 59], [0, 59], [0, 23], [1, 31], [1, 12], [0, 7]];
    let n = 0;
    for (let i = 0; i < fields.length; i++) {
      for (const it of items(...fields[i]!)) {
        const six = ['*', '*', '*', '*', '*', '*'];
        six[i] = it;
        if (!validate(six.join(' '))) continue; // e.g. day 31 of February only: node-cron refuses it
        same(six.join(' '));
        if (i > 0) same(six.slice(1).join(' '));
        n++;
      }
    }
    expect(n).toBeGreaterThan(70);
  });

  it('equals node-cron for the schedules dbs writes and for random combinations', () => {
    for (const e of ['0 2 * * *', '30 1 * * 1,4', '0 */6 * * *', '*/15 * * * *', '0 0 1 * *', '0 3 * * 0', '0 3 * * 7', '* * * * * *', '*/5 * * * * *', '  0   2  * * *  ']) same(e);
    let seed = 7;
    const rnd = (k: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % k);
    const bounds: [number, number][] = [[0, 59], [0, 59], [0, 23], [1, 28], [1, 12], [0, 7]];
    for (let t = 0; t < 300; t++) {
      const parts = bounds.map(([lo, hi]) => {
        const a = lo + rnd(hi - lo + 1);
        const b = a + rnd(hi - a + 1);
        return [`*`, `${a}`, `${a}-${b}`, `*/${1 + rnd(9)}`, `${a}-${b}/${1 + rnd(5)}`, `${a},${b}`][rnd(6)]!;
      });
      same(parts.join(' '));
    }
  });

  it('leaves names, ?, L, W, #, single-number steps and out-of-range values to node-cron', () => {
    for (const e of ['0 0 * * sun', '0 0 * jan *', '0 0 ? * *', '0 0 L * *', '0 0 15W * *', '0 0 * * 5#2', '0 0 * * 5L', '5/10 * * * *', '60 * * * *', '0 24 * * *', '0 0 0 * *', '0 0 * 13 *', '0 0 * * 8', '5-1 * * * *', '*/0 * * * *', '* * * *', '* * * * * * *', '@daily', '', '0 0 * * 1-5 extra']) {
      expect(simpleCronFields(e), e).toBeUndefined();
    }
  });
});
