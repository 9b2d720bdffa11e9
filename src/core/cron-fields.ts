// The fields of the cron expressions most plans have, without node-cron: numbers, `*`, ranges,
// steps of `*` or of a range, and lists of those. `dbs plan list` computes next runs, and loading
// node-cron (it loads node:crypto and node:child_process) was about a sixth of that command's
// start-up (issue 17). Anything else (names, `?`, L, W, #, a step of a single number) gives
// undefined and goes to node-cron (core/cron-lib.ts). test/unit/cron-fields.test.ts checks the
// result against node-cron's parse(), field by field.

export interface CronFields {
  second: number[];
  minute: number[];
  hour: number[];
  dayOfMonth: number[];
  month: number[];
  dayOfWeek: number[];
}

const BOUNDS: [keyof CronFields, number, number][] = [
  ['second', 0, 59],
  ['minute', 0, 59],
  ['hour', 0, 23],
  ['dayOfMonth', 1, 31],
  ['month', 1, 12],
  ['dayOfWeek', 0, 7],
];

const ITEM = /^(?:(\*)|(\d{1,2})(?:-(\d{1,2}))?)(?:\/(\d{1,2}))?$/;

function field(text: string, min: number, max: number, isDow: boolean): number[] | undefined {
  const out = new Set<number>();
  for (const item of text.split(',')) {
    const m = ITEM.exec(item);
    if (!m) return undefined;
    const step = m[4] === undefined ? 1 : Number(m[4]);
    // `5/10` (a step of one number) means different things to different crons: node-cron's.
    if (step < 1 || (m[4] !== undefined && m[1] === undefined && m[3] === undefined)) return undefined;
    const lo = m[1] ? min : Number(m[2]);
    const hi = m[1] ? max : m[3] !== undefined ? Number(m[3]) : lo;
    if (lo < min || hi > max || lo > hi) return undefined;
    for (let v = lo; v <= hi; v += step) out.add(isDow && v === 7 ? 0 : v);
  }
  return [...out].sort((a, b) => a - b);
}

/** The fields of a simple 5- or 6-field expression as node-cron's parse() gives them, else undefined. */
export function simpleCronFields(expr: string): CronFields | undefined {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) return undefined;
  const all = parts.length === 5 ? ['0', ...parts] : parts;
  const out: Partial<CronFields> = {};
  for (let i = 0; i < BOUNDS.length; i++) {
    const [name, min, max] = BOUNDS[i]!;
    const f = field(all[i]!, min, max, name === 'dayOfWeek');
    if (!f) return undefined;
    out[name] = f;
  }
  return out as CronFields;
}
