// Human formatting of sizes, durations, times and tables.
import bytes from 'bytes';
import prettyMs from 'pretty-ms';
import Table from 'cli-table3';
import { printableValue } from './sanitize.js';

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  return bytes.format(n, { unitSeparator: ' ', decimalPlaces: 1 }) ?? String(n);
}

export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  return prettyMs(ms, { secondsDecimalDigits: 1, unitCount: 2 });
}

/** Stored UTC, shown in local time. */
export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function table(head: string[], rows: (string | number | null | undefined)[][]): string {
  const t = new Table({ head: head.map(printableValue), style: { head: [], border: [] }, wordWrap: false });
  for (const r of rows) t.push(r.map((c) => (c === null || c === undefined ? '-' : printableValue(String(c)))));
  return t.toString();
}

/** Key/value block for `show` commands. */
export function fields(pairs: [string, string | number | null | undefined][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(w + 2)}${v === null || v === undefined || v === '' ? '-' : printableValue(String(v))}`).join('\n');
}
