// A bar chart of a series in the terminal (`dbs plan monitor`): y labels on the left, one column
// per sample (or the peak of several when there are more samples than columns), half-block
// resolution, marks on the x axis where a run starts. Fits `width` columns (default 80).

export interface ChartOptions {
  width?: number;
  /** Rows of bars (default 10). */
  height?: number;
  /** Formats a y value for the labels. */
  format: (v: number) => string;
  /** Indices into `values` where a new run starts (marked ┴ on the axis). */
  marks?: readonly number[];
  /** Text under the axis at its left and right end (e.g. the first and last sample's time). */
  left?: string;
  right?: string;
}

export function barChart(values: readonly number[], o: ChartOptions): string {
  const width = Math.max(30, o.width ?? 80);
  const height = Math.max(2, o.height ?? 10);
  const peak = Math.max(0, ...values);
  const top = peak > 0 ? peak : 1;
  const labels = [o.format(top), o.format(top / 2), o.format(0)];
  const lw = Math.max(...labels.map((l) => l.length));
  const plotWidth = width - lw - 2;
  const n = values.length;
  // Columns: the peak of the samples each covers; few samples are widened (up to 4 columns each).
  const per = n > 0 && n <= plotWidth ? Math.max(1, Math.min(4, Math.floor(plotWidth / n))) : 1;
  const cols: number[] = [];
  const colOf = new Map<number, number>();
  if (n <= plotWidth) {
    values.forEach((v, i) => {
      colOf.set(i, cols.length);
      for (let k = 0; k < per; k++) cols.push(v);
    });
  } else {
    for (let c = 0; c < plotWidth; c++) {
      const a = Math.floor((c * n) / plotWidth);
      const b = Math.max(a + 1, Math.floor(((c + 1) * n) / plotWidth));
      for (let i = a; i < b; i++) if (!colOf.has(i)) colOf.set(i, c);
      cols.push(Math.max(...values.slice(a, b)));
    }
  }
  const levels = cols.map((v) => Math.round((Math.max(0, v) / top) * height * 2));
  const lines: string[] = [];
  for (let r = 0; r < height; r++) {
    const full = (height - r) * 2;
    const label = r === 0 ? labels[0] : r === Math.floor(height / 2) ? labels[1] : '';
    const bars = levels.map((l) => (l >= full ? '█' : l === full - 1 ? '▄' : ' ')).join('');
    lines.push(`${label.padStart(lw)} ┤${bars}`.trimEnd());
  }
  const marks = new Set((o.marks ?? []).map((i) => colOf.get(i)).filter((c): c is number => c !== undefined));
  const axis = cols.map((_v, c) => (marks.has(c) ? '┴' : '─')).join('');
  lines.push(`${labels[2].padStart(lw)} └${axis}`);
  if (o.left || o.right) {
    const left = o.left ?? '';
    const right = o.right ?? '';
    const span = lw + 2 + Math.max(cols.length, left.length + right.length + 1);
    const room = Math.min(width, span) - lw - 2;
    lines.push(`${' '.repeat(lw + 2)}${left}${right.padStart(Math.max(1, room - left.length))}`.slice(0, width));
  }
  return lines.join('\n');
}
