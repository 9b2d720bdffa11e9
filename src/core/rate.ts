// Bandwidth rates as users write them (`20MiB/s`, `100Mbit/s`, `1.5 GB/s`) and as dbs shows
// them. Pure: unit tests in test/unit/rate.test.ts.
import { DbsError } from '../errors.js';

const PREFIX: Record<string, number> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** The smallest cap dbs takes: below it a single request's headers would take seconds. */
export const MIN_RATE = 1024;

const RATE_RE = /^\s*(\d+(?:\.\d+)?)\s*(|k|K|M|G|T|Ki|Mi|Gi|Ti)(B|bit)\s*(?:\/\s*s|ps)?\s*$/;

const HINT = 'write a number and a unit per second, e.g. 20MiB/s, 500KB/s, 100Mbit/s or 1Gbit/s (B = bytes, bit = bits)';

/** Bytes per second of a RATE (`20MiB/s`, `100Mbit/s`); a USAGE error (exit 2) naming the flag otherwise. */
export function parseRate(text: string, flag = '--bandwidth'): number {
  const m = RATE_RE.exec(text);
  if (!m) throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(text)} is not a rate`, { hint: HINT });
  const n = Number(m[1]) * PREFIX[m[2]!]! / (m[3] === 'bit' ? 8 : 1);
  if (!Number.isFinite(n) || n < MIN_RATE) {
    throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(text)} is below the smallest cap (1KiB/s)`, { hint: `${HINT}; omit the cap with --no-bandwidth` });
  }
  if (n > 1024 ** 4) throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(text)} is above 1TiB/s`, { hint: 'omit the cap instead (--no-bandwidth)' });
  return Math.round(n);
}

/** A rate for people: `20 MiB/s`, `12.5 MB/s` style in binary units, 3 significant digits. */
export function formatRate(bytesPerSecond: number): string {
  const units = ['B/s', 'KiB/s', 'MiB/s', 'GiB/s', 'TiB/s'];
  let v = bytesPerSecond;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = v >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toPrecision(3).replace(/\.?0+$/, '');
  return `${s} ${units[i]}`;
}
