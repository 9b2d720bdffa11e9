// Schedules: flags -> schedule, next runs (DST days included), and when a plan is due.
import { describe, expect, it } from 'vitest';
import { dueSlot } from '../../src/core/scheduler.js';
import { describeSchedule, nextRuns, parseSchedule, type Schedule, type ScheduleFlags } from '../../src/core/schedule.js';
import type { DbsError } from '../../src/errors.js';
import type { PlanRecord } from '../../src/store/catalog.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const iso = (ds: Date[]) => ds.map((d) => d.toISOString());

function err(f: ScheduleFlags): DbsError {
  try {
    parseSchedule(f, NOW);
  } catch (e) {
    return e as DbsError;
  }
  throw new Error('expected an error');
}

describe('parseSchedule', () => {
  it.each<[string, ScheduleFlags, Partial<Schedule> & Record<string, unknown>]>([
    ['manual', { manual: true }, { kind: 'manual' }],
    ['hourly', { every: 'hourly', at: ':15', tz: 'UTC' }, { kind: 'every', expr: '15 * * * *', at: ':15' }],
    ['hourly default', { every: 'hourly', tz: 'UTC' }, { expr: '0 * * * *' }],
    ['daily', { every: 'daily', at: '02:30', tz: 'Europe/Berlin' }, { expr: '30 2 * * *', tz: 'Europe/Berlin' }],
    ['weekly', { every: 'weekly', days: 'sun,mon,wed', at: '23:05', tz: 'UTC' }, { expr: '5 23 * * 1,3,0', days: ['mon', 'wed', 'sun'] }],
    ['cron', { cron: '*/5 * * * *', tz: 'UTC' }, { kind: 'cron', expr: '*/5 * * * *' }],
    ['cron with seconds', { cron: '*/2 * * * * *', tz: 'UTC' }, { kind: 'cron' }],
    ['once', { once: '2027-01-01T00:00:00Z', tz: 'UTC' }, { kind: 'once', at: '2027-01-01T00:00:00.000Z' }],
    ['start', { every: 'daily', at: '01:00', start: '2027-02-01T00:00:00Z', tz: 'UTC' }, { start: '2027-02-01T00:00:00.000Z' }],
  ])('%s', (_n, flags, want) => {
    expect(parseSchedule(flags, NOW)).toMatchObject(want);
  });

  it('is undefined without schedule flags', () => {
    expect(parseSchedule({}, NOW)).toBeUndefined();
  });

  it.each<[string, ScheduleFlags, string, RegExp]>([
    ['invalid cron', { cron: '61 * * * *' }, 'INVALID_ARGUMENT', /not a valid cron expression/],
    ['empty cron', { cron: ' ' }, 'INVALID_ARGUMENT', /not a valid cron/],
    ['--days with daily', { every: 'daily', at: '01:00', days: 'mon' }, 'USAGE', /--days applies to --every weekly only/],
    ['--once in the past', { once: '2020-01-01 00:00' }, 'INVALID_ARGUMENT', /in the past/],
    ['unknown zone', { every: 'daily', at: '01:00', tz: 'Mars/Olympus' }, 'INVALID_ARGUMENT', /not a known time zone/],
    ['--at 25:00', { every: 'daily', at: '25:00' }, 'INVALID_ARGUMENT', /not a time of day/],
    ['daily without --at', { every: 'daily' }, 'USAGE', /needs --at/],
    ['monthly', { every: 'monthly', at: '01:00' }, 'INVALID_ARGUMENT', /not hourly, daily or weekly/],
    ['weekly without days', { every: 'weekly', at: '01:00' }, 'USAGE', /needs --days/],
    ['eight days', { every: 'weekly', at: '01:00', days: 'mon,tue,wed,thu,fri,sat,sun,mon' }, 'INVALID_ARGUMENT', /1 to 7 distinct days/],
    ['bad day', { every: 'weekly', at: '01:00', days: 'mon,funday' }, 'INVALID_ARGUMENT', /unknown: fun/],
    ['manual and once', { manual: true, once: '2027-01-01 00:00' }, 'USAGE', /exclusive/],
    ['manual with --at', { manual: true, at: '01:00' }, 'USAGE', /--manual cannot be combined with --at/],
    ['--at alone', { at: '01:00' }, 'USAGE', /needs a schedule/],
    ['once with start', { once: '2027-01-01 00:00', start: '2027-01-01 00:00' }, 'USAGE', /--once cannot be combined/],
  ])('rejects %s', (_n, flags, code, msg) => {
    const e = err(flags);
    expect(e.code).toBe(code);
    expect(e.message).toMatch(msg);
    expect(e.hint).toBeTruthy();
  });
});

describe('nextRuns', () => {
  const daily = (tz: string) => parseSchedule({ every: 'daily', at: '02:30', tz }, NOW)!;
  it('schedules day tokens: last day (L), last weekday of the month (5L), nth weekday (5#2), nearest weekday (W), in UTC and in a zone', () => {
    const from = new Date('2026-12-03T00:00:00Z'); // a Thursday
    const cron = (expr: string, tz = 'UTC') => nextRuns(parseSchedule({ cron: expr, tz }, from)!, from, 3);
    expect(iso(cron('0 0 L * *'))).toEqual(['2026-12-31T00:00:00.000Z', '2027-01-31T00:00:00.000Z', '2027-02-28T00:00:00.000Z']);
    expect(iso(cron('0 9 * * 5L'))).toEqual(['2026-12-25T09:00:00.000Z', '2027-01-29T09:00:00.000Z', '2027-02-26T09:00:00.000Z']);
    expect(iso(cron('0 9 * * 5#2'))).toEqual(['2026-12-11T09:00:00.000Z', '2027-01-08T09:00:00.000Z', '2027-02-12T09:00:00.000Z']);
    // The 15th of May 2027 is a Saturday: the nearest weekday is Friday the 14th.
    expect(iso(nextRuns(parseSchedule({ cron: '30 12 15W 5 *', tz: 'UTC' }, from)!, from, 1))).toEqual(['2027-05-14T12:30:00.000Z']);
    // Midnight of the zone's last day (Berlin is UTC+1 in winter, +2 in summer).
    expect(iso(cron('0 0 L * *', 'Europe/Berlin'))).toEqual(['2026-12-30T23:00:00.000Z', '2027-01-30T23:00:00.000Z', '2027-02-27T23:00:00.000Z']);
    expect(iso(nextRuns(parseSchedule({ cron: '0 0 L * *', tz: 'Europe/Berlin' }, from)!, new Date('2027-04-01T00:00:00Z'), 1))).toEqual(['2027-04-29T22:00:00.000Z']);
  });
  it('gives the next 3 runs, readable', () => {
    const s = daily('UTC');
    expect(describeSchedule(s)).toBe('daily at 02:30 (UTC)');
    expect(iso(nextRuns(s, NOW, 3))).toEqual(['2026-11-22T02:30:00.000Z', '2026-11-23T02:30:00.000Z', '2026-11-24T02:30:00.000Z']);
  });
  it('runs a daily time that the spring-forward change skips right after the change, once', () => {
    // Europe/Berlin, 2026-03-29: 02:00 CET -> 03:00 CEST; 02:30 does not exist that day.
    expect(iso(nextRuns(daily('Europe/Berlin'), new Date('2026-03-27T12:00:00Z'), 4))).toEqual([
      '2026-03-28T01:30:00.000Z',
      '2026-03-29T01:00:00.000Z', // 03:00 CEST, the first instant after the gap
      '2026-03-30T00:30:00.000Z',
      '2026-03-31T00:30:00.000Z',
    ]);
  });
  it('runs a daily time that the fall-back change repeats only once', () => {
    // Europe/Berlin, 2026-10-25: 03:00 CEST -> 02:00 CET; 02:30 happens twice.
    const s = daily('Europe/Berlin');
    expect(iso(nextRuns(s, new Date('2026-10-23T12:00:00Z'), 4))).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
      '2026-10-27T01:30:00.000Z',
    ]);
    // Asked again right after the first 02:30 ran (as the daemon does), the repeat is skipped.
    expect(iso(nextRuns(s, new Date('2026-10-25T00:30:00Z'), 1))).toEqual(['2026-10-26T01:30:00.000Z']);
  });
  it('keeps hourly schedules on elapsed time across the change', () => {
    const s = parseSchedule({ every: 'hourly', at: ':00', tz: 'America/New_York' }, NOW)!;
    // 2026-11-01: 02:00 EDT -> 01:00 EST; an hourly plan runs every real hour.
    const runs = nextRuns(s, new Date('2026-11-01T04:30:00Z'), 4);
    expect(iso(runs)).toEqual(['2026-11-01T05:00:00.000Z', '2026-11-01T06:00:00.000Z', '2026-11-01T07:00:00.000Z', '2026-11-01T08:00:00.000Z']);
  });
  it('honours --start and weekly days', () => {
    const s = parseSchedule({ every: 'weekly', days: 'mon,thu', at: '04:00', start: '2026-12-01T00:00:00Z', tz: 'UTC' }, NOW)!;
    expect(iso(nextRuns(s, NOW, 3))).toEqual(['2026-12-03T04:00:00.000Z', '2026-12-07T04:00:00.000Z', '2026-12-10T04:00:00.000Z']);
  });
  it('has nothing for manual plans and one run for --once', () => {
    expect(nextRuns({ kind: 'manual' }, NOW, 3)).toEqual([]);
    const once = parseSchedule({ once: '2026-12-24T18:00:00Z' }, NOW)!;
    expect(iso(nextRuns(once, NOW, 3))).toEqual(['2026-12-24T18:00:00.000Z']);
    expect(nextRuns(once, new Date('2026-12-25T00:00:00Z'), 3)).toEqual([]);
  });
});

describe('dueSlot', () => {
  const plan = (schedule: Schedule, since: string, status: 'active' | 'paused' = 'active') =>
    ({ id: 'p', status, createdAt: since, schedule: { ...schedule, since } }) as unknown as PlanRecord;
  const daily = parseSchedule({ every: 'daily', at: '02:30', tz: 'UTC' }, NOW)!;
  const created = '2026-11-20T12:00:00.000Z';
  it.each<[string, string, string | undefined, string | undefined]>([
    ['before the first slot', '2026-11-21T02:00:00Z', undefined, undefined],
    ['at the first slot', '2026-11-21T02:30:00Z', undefined, '2026-11-21T02:30:00.000Z'],
    ['after it ran', '2026-11-21T12:00:00Z', '2026-11-21T02:30:01Z', undefined],
    ['next day', '2026-11-22T02:31:00Z', '2026-11-21T02:30:01Z', '2026-11-22T02:30:00.000Z'],
    ['three missed slots make one due run', '2026-11-24T12:00:00Z', '2026-11-21T02:30:01Z', '2026-11-22T02:30:00.000Z'],
    ['after catching up', '2026-11-24T12:00:05Z', '2026-11-24T12:00:00Z', undefined],
  ])('%s', (_n, now, last, want) => {
    const d = dueSlot(plan(daily, created), new Date(now), last ? new Date(last) : undefined);
    expect(d?.toISOString()).toBe(want);
  });
  it('is never due for paused or manual plans', () => {
    expect(dueSlot(plan(daily, created, 'paused'), new Date('2026-11-25T00:00:00Z'), undefined)).toBeUndefined();
    expect(dueSlot(plan({ kind: 'manual' }, created), new Date('2026-11-25T00:00:00Z'), undefined)).toBeUndefined();
  });
});
