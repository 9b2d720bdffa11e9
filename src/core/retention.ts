// Retention as a pure function: given a plan's rules and its backups, what to delete and why.
// A backup is kept when any rule keeps it. Never deletes the newest backup, nor a backup
// that a kept backup depends on (incremental parents).
import { invalid, object, optBoolean, optNumber } from '../decode.js';
import type { PlanRecord } from '../store/catalog.js';

export interface Retention {
  /** Keep backups younger than N days. */
  keepDays?: number;
  /** Keep the newest N backups. */
  keepLast?: number;
  /** GFS: keep the newest backup of each of the last N days / ISO weeks / months that have one. */
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  /** Keep everything (the default when no rule is set). */
  keepForever?: boolean;
}

export interface RetainedBackup {
  id: string;
  endedAt: string;
  parentId: string | null;
}

export interface PruneDecision {
  id: string;
  reason: string;
}

const RULES: [keyof Retention, string][] = [
  ['keepLast', 'keep-last'],
  ['keepDays', 'keep-days'],
  ['keepDaily', 'keep-daily'],
  ['keepWeekly', 'keep-weekly'],
  ['keepMonthly', 'keep-monthly'],
];

/**
 * Decodes stored retention rules. A rule this dbs does not know is refused rather than ignored:
 * pruning without it could delete what it keeps.
 */
export function decodeRetention(data: unknown, what: string): Retention {
  const o = object(data, what);
  const known = new Set<string>([...RULES.map(([k]) => k), 'keepForever']);
  const unknown = Object.keys(o).filter((k) => !known.has(k));
  if (unknown.length) throw invalid(what, `unknown rule(s) ${unknown.join(', ')}`);
  const r: Retention = {};
  for (const [k] of RULES) {
    const n = optNumber(o, k, what, { min: 0, integer: true });
    if (n !== undefined) r[k as Exclude<keyof Retention, 'keepForever'>] = n;
  }
  const forever = optBoolean(o, 'keepForever', what);
  if (forever !== undefined) r.keepForever = forever;
  return r;
}

/** A plan's retention rules, decoded. */
export function planRetention(plan: Pick<PlanRecord, 'id' | 'name' | 'retention'>): Retention {
  return decodeRetention(plan.retention, `the retention of plan ${JSON.stringify(plan.name)} (${plan.id})`);
}

export function hasRules(r: Retention): boolean {
  return RULES.some(([k]) => r[k] !== undefined);
}

export function describeRetention(r: Retention): string {
  if (r.keepForever || !hasRules(r)) return 'keep forever';
  return RULES.filter(([k]) => r[k] !== undefined)
    .map(([k, flag]) => `${flag} ${r[k]}`)
    .join(', ');
}

function parts(d: Date, tz: string): { y: number; m: number; day: number } {
  const f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(d);
  const get = (t: string) => Number(f.find((p) => p.type === t)!.value);
  return { y: get('year'), m: get('month'), day: get('day') };
}

function dayKey(d: Date, tz: string): string {
  const p = parts(d, tz);
  return `${p.y}-${p.m}-${p.day}`;
}

function monthKey(d: Date, tz: string): string {
  const p = parts(d, tz);
  return `${p.y}-${p.m}`;
}

/** ISO 8601 week key (year-Www) of the calendar day in the zone. */
export function weekKey(d: Date, tz: string): string {
  const p = parts(d, tz);
  const date = new Date(Date.UTC(p.y, p.m - 1, p.day));
  const dayNum = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - dayNum); // the Thursday of this ISO week
  const yearStart = Date.UTC(date.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((date.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${date.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

/** Newest backup of each of the first `n` distinct buckets, newest first. */
function keepBuckets(sorted: RetainedBackup[], n: number, key: (d: Date) => string): Set<string> {
  const out = new Set<string>();
  const seen = new Set<string>();
  for (const b of sorted) {
    const k = key(new Date(b.endedAt));
    if (seen.has(k)) continue;
    if (seen.size >= n) break;
    seen.add(k);
    out.add(b.id);
  }
  return out;
}

export function planPrune(rule: Retention, backups: RetainedBackup[], now: Date, tz = 'UTC'): PruneDecision[] {
  const sorted = [...backups].sort((a, b) => (a.endedAt < b.endedAt ? 1 : a.endedAt > b.endedAt ? -1 : a.id < b.id ? 1 : -1));
  if (sorted.length === 0 || rule.keepForever || !hasRules(rule)) return [];
  const keep = new Set<string>([sorted[0].id]);
  const add = (ids: Iterable<string>) => {
    for (const id of ids) keep.add(id);
  };
  if (rule.keepLast !== undefined) add(sorted.slice(0, rule.keepLast).map((b) => b.id));
  if (rule.keepDays !== undefined) add(sorted.filter((b) => (now.getTime() - new Date(b.endedAt).getTime()) / 86_400_000 <= rule.keepDays!).map((b) => b.id));
  if (rule.keepDaily !== undefined) add(keepBuckets(sorted, rule.keepDaily, (d) => dayKey(d, tz)));
  if (rule.keepWeekly !== undefined) add(keepBuckets(sorted, rule.keepWeekly, (d) => weekKey(d, tz)));
  if (rule.keepMonthly !== undefined) add(keepBuckets(sorted, rule.keepMonthly, (d) => monthKey(d, tz)));
  // Keep every ancestor of a kept backup, so no kept incremental loses its chain.
  const byId = new Map(sorted.map((b) => [b.id, b]));
  for (const id of [...keep]) {
    for (let p = byId.get(id)?.parentId ?? null; p && !keep.has(p); p = byId.get(p)?.parentId ?? null) keep.add(p);
  }
  const why = `not kept by ${describeRetention(rule)}`;
  return sorted.filter((b) => !keep.has(b.id)).map((b) => ({ id: b.id, reason: why }));
}
