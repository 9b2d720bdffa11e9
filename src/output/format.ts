// Human formatting of sizes, durations, times and tables.
import prettyMs from 'pretty-ms';
import { printableValue } from './sanitize.js';

const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** A size in the unit it names: KiB = 2^10, MiB = 2^20, ... (one decimal above bytes). */
export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  if (!Number.isFinite(n)) return String(n);
  const sign = n < 0 ? '-' : '';
  let v = Math.abs(n);
  let u = 0;
  while (v >= 1024 && u < IEC.length - 1) {
    v /= 1024;
    u++;
  }
  // 1023.96 KiB would print as "1024.0 KiB": carry into the next unit.
  if (u > 0 && Math.round(v * 10) / 10 >= 1024 && u < IEC.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${sign}${v} B` : `${sign}${(Math.round(v * 10) / 10).toFixed(1)} ${IEC[u]}`;
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

let tableWidth: number | undefined;

/**
 * The width tables fit (set once per run by Output: the terminal's columns, COLUMNS when
 * stdout is not a terminal, else undefined: no limit, every column, for pipes and scripts).
 */
export function setTableWidth(width: number | undefined): void {
  tableWidth = width !== undefined && Number.isFinite(width) && width >= 20 ? Math.floor(width) : undefined;
}

const GAP = 2;

/**
 * A borderless table: columns left-aligned, two spaces apart. Callers give the columns that
 * matter first: when the table is wider than the terminal, columns are left out from the
 * right; when even the first ones do not fit, the widest cells of the last kept column are
 * cut with "…".
 */
export function table(head: string[], rows: (string | number | null | undefined)[][], width: number | undefined = tableWidth): string {
  const cells = rows.map((r) => head.map((_h, i) => (r[i] === null || r[i] === undefined ? '-' : printableValue(String(r[i])))));
  const heads = head.map(printableValue);
  const widths = heads.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  let keep = widths.length;
  if (width !== undefined) {
    let used = 0;
    keep = 0;
    for (let i = 0; i < widths.length; i++) {
      const left = width - used - (keep > 0 ? GAP : 0);
      if (keep > 0 && widths[i] > left) {
        // A column that does not fit whole is kept cut, when at least its heading fits.
        if (left >= Math.max(heads[i].length, 8)) {
          widths[i] = left;
          used = width;
          keep++;
        }
        break;
      }
      used += (keep > 0 ? GAP : 0) + widths[i];
      keep++;
    }
    if (used > width) widths[keep - 1] = Math.max(1, widths[keep - 1] - (used - width));
  }
  const fit = (s: string, w: number) => (s.length > w ? `${s.slice(0, Math.max(0, w - 1))}…` : s.padEnd(w));
  const line = (r: string[]) => r.slice(0, keep).map((c, i) => (i === keep - 1 ? fit(c, widths[i]).trimEnd() : fit(c, widths[i]))).join(' '.repeat(GAP));
  return [line(heads), ...cells.map(line)].join('\n');
}

/** Key/value block for `show` commands. */
export function fields(pairs: [string, string | number | null | undefined][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(w + 2)}${v === null || v === undefined || v === '' ? '-' : printableValue(String(v))}`).join('\n');
}
