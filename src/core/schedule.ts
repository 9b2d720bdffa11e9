// Plan schedules: manual, a cron expression, every hourly/daily/weekly, or once. Validated at
// create/update; next runs computed in the plan's time zone from the parsed fields
// (core/cron-fields.ts, else node-cron's parse) and node-cron's matcher for L/W/#.
import type { createTask, parse } from 'node-cron';
import { simpleCronFields, type CronFields } from './cron-fields.js';
import { loadCron } from './cron-lib.js';
import { DbsError } from '../errors.js';
import { invalid, object, oneOf, string, stringArray } from '../decode.js';
import type { PlanRecord } from '../store/catalog.js';

export type Schedule =
  | { kind: 'manual' }
  | { kind: 'cron'; expr: string; tz: string; start?: string }
  | { kind: 'every'; every: 'hourly' | 'daily' | 'weekly'; at: string; days?: string[]; expr: string; tz: string; start?: string }
  | { kind: 'once'; at: string; tz: string };

/** A schedule as the catalog stores it: with the time it was set (nothing before is missed). */
export type StoredSchedule = Schedule & { since?: string };

function time(o: Record<string, unknown>, key: string, what: string): string {
  const v = string(o, key, what);
  if (Number.isNaN(Date.parse(v))) throw invalid(what, `${key}: ${JSON.stringify(v)} is not a time`);
  return v;
}

function optTime(o: Record<string, unknown>, key: string, what: string): string | undefined {
  return o[key] === undefined ? undefined : time(o, key, what);
}

/** Decodes a stored schedule; a DbsError (INVALID_RECORD) naming `what` when it is not one. */
export function decodeSchedule(data: unknown, what: string): StoredSchedule {
  const o = object(data, what);
  const kind = oneOf(o, 'kind', ['manual', 'cron', 'every', 'once'] as const, what);
  const since = optTime(o, 'since', what);
  const extra = since !== undefined ? { since } : {};
  const start = optTime(o, 'start', what);
  const starts = start !== undefined ? { start } : {};
  switch (kind) {
    case 'manual':
      return { kind, ...extra };
    case 'once':
      return { kind, at: time(o, 'at', what), tz: string(o, 'tz', what), ...extra };
    case 'cron':
      return { kind, expr: string(o, 'expr', what), tz: string(o, 'tz', what), ...starts, ...extra };
    case 'every': {
      const days = o.days === undefined ? undefined : stringArray(o, 'days', what);
      if (days?.some((d) => !DAYS.includes(d))) throw invalid(what, `days: ${JSON.stringify(days)} are not days (mon..sun)`);
      return {
        kind,
        every: oneOf(o, 'every', ['hourly', 'daily', 'weekly'] as const, what),
        at: string(o, 'at', what),
        ...(days ? { days } : {}),
        expr: string(o, 'expr', what),
        tz: string(o, 'tz', what),
        ...starts,
        ...extra,
      };
    }
  }
}

/** A plan's schedule, decoded. */
export function planSchedule(plan: Pick<PlanRecord, 'id' | 'name' | 'schedule'>): StoredSchedule {
  return decodeSchedule(plan.schedule, `the schedule of plan ${JSON.stringify(plan.name)} (${plan.id})`);
}

export interface ScheduleFlags {
  manual?: boolean;
  cron?: string;
  every?: string;
  at?: string;
  days?: string;
  once?: string;
  start?: string;
  tz?: string;
}

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

export function localZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export function validateZone(tz: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return tz;
  } catch {
    throw new DbsError('INVALID_ARGUMENT', `--tz ${JSON.stringify(tz)} is not a known time zone`, { hint: 'use an IANA name such as Europe/Berlin or UTC' });
  }
}

/** Parses a time given by a user: ISO 8601, or "YYYY-MM-DD HH:MM[:SS]" in local time. */
export function parseTime(s: string, flag: string): Date {
  const t = s.trim();
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(t);
  const d = m ? new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], m[6] ? +m[6] : 0) : new Date(t);
  if (Number.isNaN(d.getTime()) || !/^\d{4}-\d{2}-\d{2}/.test(t)) {
    throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(s)} is not a time`, { hint: 'use e.g. "2026-12-01 02:30" (local time) or 2026-12-01T02:30:00Z' });
  }
  return d;
}

function parseAt(at: string | undefined, every: string): { h: number; m: number } {
  if (every === 'hourly') {
    if (at === undefined) return { h: 0, m: 0 };
    const mm = /^:?(\d{1,2})$/.exec(at);
    if (!mm || +mm[1] > 59) throw new DbsError('INVALID_ARGUMENT', `--at ${JSON.stringify(at)} is not a minute past the hour`, { hint: 'use --at :MM, e.g. --at :15' });
    return { h: 0, m: +mm[1] };
  }
  if (at === undefined) throw new DbsError('USAGE', `--every ${every} needs --at HH:MM`, { hint: 'e.g. --at 02:30' });
  const mm = /^(\d{1,2}):(\d{2})$/.exec(at);
  if (!mm || +mm[1] > 23 || +mm[2] > 59) throw new DbsError('INVALID_ARGUMENT', `--at ${JSON.stringify(at)} is not a time of day`, { hint: 'use HH:MM from 00:00 to 23:59' });
  return { h: +mm[1], m: +mm[2] };
}

/** Builds a schedule from flags; undefined when no schedule flag was given. */
export function parseSchedule(f: ScheduleFlags, now: Date): Schedule | undefined {
  const given = [f.manual ? '--manual' : '', f.cron !== undefined ? '--cron' : '', f.every !== undefined ? '--every' : '', f.once !== undefined ? '--once' : ''].filter(Boolean);
  if (given.length > 1) throw new DbsError('USAGE', `${given.join(' and ')} are exclusive`, { hint: 'give one of --manual, --cron, --every, --once' });
  if (given.length === 0) {
    for (const [k, v] of Object.entries({ at: f.at, days: f.days, start: f.start })) {
      if (v !== undefined) throw new DbsError('USAGE', `--${k} needs a schedule`, { hint: 'add --every, --cron or --once' });
    }
    return undefined;
  }
  const tz = validateZone(f.tz ?? localZone());
  if (f.manual) {
    for (const [k, v] of Object.entries({ at: f.at, days: f.days, start: f.start, tz: f.tz })) {
      if (v !== undefined) throw new DbsError('USAGE', `--manual cannot be combined with --${k}`, { hint: `drop --${k}, or choose a schedule` });
    }
    return { kind: 'manual' };
  }
  if (f.days !== undefined && f.every !== 'weekly') {
    throw new DbsError('USAGE', `--days applies to --every weekly only${f.every ? ` (got --every ${f.every})` : ''}`, { hint: 'use --every weekly --days mon,thu --at HH:MM' });
  }
  const start = f.start !== undefined ? parseTime(f.start, '--start').toISOString() : undefined;
  if (f.once !== undefined) {
    if (f.at !== undefined || f.start !== undefined) throw new DbsError('USAGE', '--once cannot be combined with --at or --start', { hint: 'give the time in --once' });
    const at = parseTime(f.once, '--once');
    if (at.getTime() <= now.getTime()) throw new DbsError('INVALID_ARGUMENT', `--once ${JSON.stringify(f.once)} is in the past`, { hint: 'give a future time' });
    return { kind: 'once', at: at.toISOString(), tz };
  }
  if (f.cron !== undefined) {
    if (f.at !== undefined) throw new DbsError('USAGE', '--at applies to --every only', { hint: 'put the time into the cron expression' });
    const v = loadCron().validateDetailed(f.cron);
    if (!v.valid || f.cron.trim() === '') {
      const why = v.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
      throw new DbsError('INVALID_ARGUMENT', `--cron ${JSON.stringify(f.cron)} is not a valid cron expression${why ? ` (${why})` : ''}`, {
        hint: 'use 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, e.g. "30 2 * * *"',
      });
    }
    return { kind: 'cron', expr: f.cron.trim(), tz, ...(start ? { start } : {}) };
  }
  const every = f.every!;
  if (every !== 'hourly' && every !== 'daily' && every !== 'weekly') {
    throw new DbsError('INVALID_ARGUMENT', `--every ${JSON.stringify(every)} is not hourly, daily or weekly`, { hint: 'or use --cron EXPR' });
  }
  const { h, m } = parseAt(f.at, every);
  let expr: string;
  let days: string[] | undefined;
  if (every === 'hourly') expr = `${m} * * * *`;
  else if (every === 'daily') expr = `${m} ${h} * * *`;
  else {
    if (!f.days) throw new DbsError('USAGE', '--every weekly needs --days', { hint: 'e.g. --days mon,thu' });
    days = f.days.split(',').map((d) => d.trim().toLowerCase().slice(0, 3));
    const bad = days.filter((d) => !DAYS.includes(d));
    if (bad.length || days.length < 1 || days.length > 7 || new Set(days).size !== days.length) {
      throw new DbsError('INVALID_ARGUMENT', `--days ${JSON.stringify(f.days)} must be 1 to 7 distinct days${bad.length ? ` (unknown: ${bad.join(', ')})` : ''}`, {
        hint: 'use mon,tue,wed,thu,fri,sat,sun',
      });
    }
    days.sort((a, b) => ((DAYS.indexOf(a) + 6) % 7) - ((DAYS.indexOf(b) + 6) % 7));
    expr = `${m} ${h} * * ${days.map((d) => DAYS.indexOf(d)).join(',')}`;
  }
  const at = every === 'hourly' ? `:${String(m).padStart(2, '0')}` : `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`;
  return { kind: 'every', every, at, ...(days ? { days } : {}), expr, tz, ...(start ? { start } : {}) };
}

export function describeSchedule(s: Schedule): string {
  switch (s.kind) {
    case 'manual':
      return 'manual';
    case 'once':
      return `once at ${new Date(s.at).toISOString()}`;
    case 'cron':
      return `cron "${s.expr}" (${s.tz})`;
    case 'every':
      if (s.every === 'hourly') return `hourly at ${s.at} (${s.tz})`;
      if (s.every === 'daily') return `daily at ${s.at} (${s.tz})`;
      return `weekly on ${s.days!.join(',')} at ${s.at} (${s.tz})`;
  }
}

/** A parsed expression: ours for simple ones, node-cron's (day fields may hold L/W tokens) for the rest. */
type Fields = CronFields | ReturnType<typeof parse>;

const UTC_ZONES = new Set(['UTC', 'Etc/UTC', 'Etc/GMT', 'GMT', 'Etc/Universal', 'Universal', 'Etc/Zulu', 'Zulu']);

/** The next `count` run times strictly after `after` (none for manual plans). */
export function nextRuns(s: Schedule, after: Date, count: number): Date[] {
  if (s.kind === 'manual') return [];
  if (s.kind === 'once') {
    const at = new Date(s.at);
    return at > after ? [at] : [];
  }
  const from = s.start && new Date(s.start) > after ? new Date(new Date(s.start).getTime() - 1) : after;
  // node-cron's matcher (a whole scheduled task: timers, events, a registry entry) only for
  // the expressions whose day fields need it (L, W, #); the rest match on the parsed fields, so a
  // daemon arming 1,000 plans allocates little.
  // The matcher runs in UTC on wall-clock times (walk() keeps both), so its day tokens (last
  // day, nearest weekday, nth weekday) are judged on the zone's calendar.
  const task = /[LW#]/i.test(s.expr) ? loadCron().createTask(s.expr, () => undefined, { timezone: 'UTC' }) : undefined;
  try {
    return walk(task, s.expr, s.tz, from, count);
  } finally {
    void task?.destroy();
  }
}

/** Wall-clock time in the zone as a UTC-epoch number (for comparisons only); UTC: the time itself. */
function wallClock(fmt: Intl.DateTimeFormat | undefined, t: number): number {
  if (!fmt) return t;
  const p: Record<string, number> = {};
  for (const part of fmt.formatToParts(new Date(t))) if (part.type !== 'literal') p[part.type] = Number(part.value);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour % 24, p.minute, p.second);
}

/**
 * Walks forward from `from` with cron-daemon semantics across daylight-saving changes:
 * schedules at fixed hours run once per wall-clock time (a time repeated when clocks go back
 * runs once; a time skipped when they go forward runs right after the change), while
 * schedules with a wildcard or stepped hour run by elapsed time.
 */
function walk(task: ReturnType<typeof createTask> | undefined, expr: string, tz: string, from: Date, count: number): Date[] {
  const fieldsList = expr.trim().split(/\s+/);
  const seconds = fieldsList.length === 6;
  const fixedHours = !/[*/]/.test(fieldsList[seconds ? 2 : 1]);
  const f: Fields = simpleCronFields(expr) ?? loadCron().parse(expr);
  // The first Intl.DateTimeFormat of a process costs ~9 ms (ICU zone data): UTC needs none.
  const fmt = UTC_ZONES.has(tz) ? undefined : new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
  const step = seconds ? 1000 : 60_000;
  const firstOfDay = Math.min(...f.hour.map(Number)) * 3_600_000 + Math.min(...f.minute.map(Number)) * 60_000 + Math.min(...f.second.map(Number)) * 1000;
  const out: Date[] = [];
  let t = Math.floor(from.getTime() / step) * step + step;
  let lastWall = wallClock(fmt, from.getTime());
  let prevT = t - step;
  let prevWall = wallClock(fmt, prevT);
  const limit = t + 400 * 24 * 3600 * 1000;
  while (out.length < count && t < limit) {
    const wall = wallClock(fmt, t);
    // A wall-clock gap (clocks went forward) that hid a matching time: run right after it.
    if (fixedHours && wall - prevWall > t - prevT && skippedMatch(f, prevWall, wall, step)) {
      out.push(new Date(t));
      lastWall = wall;
    } else {
      const w = new Date(wall);
      // With day tokens (L, W, #) the fields hold strings that no date equals: ask the matcher
      // whether the day matches at its first matching time (the time fields are plain numbers).
      const dayOk = task
        ? f.month.includes(w.getUTCMonth() + 1) && task.match(new Date(wall - (wall % 86_400_000) + firstOfDay))
        : f.month.includes(w.getUTCMonth() + 1) && f.dayOfMonth.includes(w.getUTCDate()) && f.dayOfWeek.some((x) => x === w.getUTCDay() || (x === 7 && w.getUTCDay() === 0));
      if (!dayOk || !f.hour.includes(w.getUTCHours())) {
        // Nothing can match before the next local hour (or day): jump there.
        const toNext = dayOk ? 3_600_000 - (wall % 3_600_000) : 86_400_000 - (wall % 86_400_000);
        prevT = t;
        prevWall = wall;
        t += toNext;
        continue;
      }
      if (!seconds) {
        // In a matching hour, go straight to its next matching minute (or the next hour)
        // instead of trying each minute: each try formats a time in the zone (Intl), which
        // made an hourly plan cost `plan list` tens of milliseconds.
        const minute = w.getUTCMinutes();
        const next = f.minute.filter((m) => m >= minute);
        const skip = next.length ? (Math.min(...next) - minute) * 60_000 : 3_600_000 - (wall % 3_600_000);
        if (skip > 0) {
          prevT = t;
          prevWall = wall;
          t += skip;
          continue;
        }
      }
      const matches = task ? task.match(new Date(wall)) : f.second.includes(w.getUTCSeconds()) && f.minute.includes(w.getUTCMinutes());
      if (matches && (!fixedHours || wall > lastWall)) {
        out.push(new Date(t));
        lastWall = wall;
      }
    }
    prevT = t;
    prevWall = wall;
    t += step;
  }
  return out;
}

/** True when a wall-clock time strictly between two readings matches the parsed fields. */
function skippedMatch(f: Fields, before: number, after: number, step: number): boolean {
  for (let w = before + step; w < after; w += step) {
    const d = new Date(w);
    const dow = d.getUTCDay();
    const okDom = f.dayOfMonth.some((x) => x === d.getUTCDate());
    const okDow = f.dayOfWeek.some((x) => x === dow || (x === 7 && dow === 0));
    if (
      f.minute.includes(d.getUTCMinutes()) &&
      f.hour.includes(d.getUTCHours()) &&
      f.month.includes(d.getUTCMonth() + 1) &&
      okDom &&
      okDow &&
      (step >= 60_000 || f.second.includes(d.getUTCSeconds()))
    ) {
      return true;
    }
  }
  return false;
}
