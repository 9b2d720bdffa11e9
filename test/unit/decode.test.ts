// Decoding at the catalog boundary: schedules, retention rules and manifests read back from the
// catalog or a pool are typed values or an INVALID_RECORD naming the object and the field.
import { describe, expect, it } from 'vitest';
import { DbsError } from '../../src/errors.js';
import { backupManifest, decodeManifest, MANIFEST_FORMAT, type Manifest } from '../../src/core/manifest.js';
import { decodeRetention, planRetention } from '../../src/core/retention.js';
import { decodeSchedule, parseSchedule, planSchedule } from '../../src/core/schedule.js';

function failure(fn: () => unknown): DbsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DbsError);
    expect((e as DbsError).code).toBe('INVALID_RECORD');
    expect((e as DbsError).exitCode).toBe(1);
    return e as DbsError;
  }
  throw new Error('did not throw');
}

const plan = { id: 'plan-0123456789', name: 'nightly' };

describe('schedules', () => {
  const now = new Date('2026-11-01T00:00:00Z');
  it.each([
    [{ manual: true }],
    [{ cron: '30 2 * * *', tz: 'UTC', start: '2026-12-01 02:00' }],
    [{ every: 'weekly', days: 'thu,mon', at: '03:15', tz: 'Europe/Berlin' }],
    [{ every: 'hourly', at: ':07', tz: 'UTC' }],
    [{ once: '2027-01-01T00:00:00Z', tz: 'UTC' }],
  ])('what parseSchedule builds (with since) decodes to itself: %j', (flags) => {
    const stored = { ...parseSchedule(flags, now)!, since: now.toISOString() };
    expect(decodeSchedule(JSON.parse(JSON.stringify(stored)), 'x')).toEqual(stored);
  });

  it.each([
    [{ kind: 'sometimes' }, /kind: expected one of manual, cron, every, once, got "sometimes"/],
    [{ kind: 'cron', tz: 'UTC' }, /expr: expected a string, got nothing/],
    [{ kind: 'every', every: 'monthly', at: '01:00', expr: '0 1 * * *', tz: 'UTC' }, /every: expected one of hourly, daily, weekly/],
    [{ kind: 'every', every: 'weekly', at: '01:00', days: ['mon', 'someday'], expr: '0 1 * * 1', tz: 'UTC' }, /days: .* are not days/],
    [{ kind: 'once', at: 'tomorrow', tz: 'UTC' }, /at: "tomorrow" is not a time/],
    [{ kind: 'manual', since: 17 }, /since: expected a string, got a number/],
    ['manual', /expected an object, got the string "manual"/],
  ])('%j is refused', (data, message) => {
    const e = failure(() => planSchedule({ ...plan, schedule: data as never }));
    expect(e.message).toMatch(/^the schedule of plan "nightly" \(plan-0123456789\): /);
    expect(e.message).toMatch(message);
  });
});

describe('retention rules', () => {
  it('decodes the rules parseRetention writes', () => {
    const r = { keepLast: 3, keepDays: 7, keepDaily: 7, keepWeekly: 4, keepMonthly: 12 };
    expect(decodeRetention(r, 'x')).toEqual(r);
    expect(decodeRetention({ keepForever: true }, 'x')).toEqual({ keepForever: true });
    expect(decodeRetention({}, 'x')).toEqual({});
  });

  it.each([
    [{ keepLast: -1 }, /keepLast: expected an integer >= 0, got a number -1/],
    [{ keepLast: '3' }, /keepLast: expected an integer >= 0, got the string "3"/],
    [{ keepDays: 1.5 }, /keepDays: expected an integer/],
    [{ keepForever: 'yes' }, /keepForever: expected true or false/],
    // A rule a newer dbs knows is not ignored: pruning without it could delete what it keeps.
    [{ keepLast: 3, keepYearly: 5 }, /unknown rule\(s\) keepYearly/],
    [[], /expected an object, got an array/],
  ])('%j is refused', (data, message) => {
    const e = failure(() => planRetention({ ...plan, retention: data as never }));
    expect(e.message).toMatch(/^the retention of plan "nightly" \(plan-0123456789\): /);
    expect(e.message).toMatch(message);
  });
});

describe('manifests', () => {
  const good: Manifest = {
    format: MANIFEST_FORMAT,
    dbsVersion: '0.1.0',
    backupId: 'b-20261101T000000Z-abcd',
    plan: { id: plan.id, name: plan.name },
    source: { kind: 'sqlite', url: 'sqlite:///srv/app.db' },
    backupType: 'logical',
    selection: {},
    parentId: null,
    tool: { name: 'sqlite', version: '3.46' },
    server: {},
    facts: { pages: 3 },
    artifacts: [{ name: 'database.sqlite.zst', key: 'dbs/backups/p/b/database.sqlite.zst', rawBytes: 8192, storedBytes: 300, sha256: 'a'.repeat(64), compression: 'zstd', encryption: 'none' }],
    rawBytes: 8192,
    storedBytes: 300,
    startedAt: '2026-11-01T00:00:00.000Z',
    endedAt: '2026-11-01T00:00:01.000Z',
  };
  const copy = () => JSON.parse(JSON.stringify(good)) as Record<string, any>;

  it('a manifest dbs writes decodes to itself; fields a newer dbs adds travel along', () => {
    expect(backupManifest({ id: good.backupId, manifest: copy() })).toEqual(good);
    const newer = copy();
    newer.note = 'added later';
    newer.artifacts[0].frames = 4;
    const d = decodeManifest(newer, 'x') as Manifest & { note?: string };
    expect(d.note).toBe('added later');
    expect(d.artifacts[0]).toHaveProperty('frames', 4);
  });

  it.each([
    [(m: Record<string, any>) => (m.format = 2), /format 2 is newer than this dbs knows \(1\)/],
    [(m: Record<string, any>) => delete m.artifacts, /artifacts: expected an array, got nothing/],
    [(m: Record<string, any>) => (m.artifacts[0].sha256 = 'abc'), /artifact 1: sha256: "abc" is not a sha256/],
    [(m: Record<string, any>) => (m.artifacts[0].storedBytes = -5), /artifact 1: storedBytes: expected an integer >= 0/],
    [(m: Record<string, any>) => (m.artifacts[0].encryption = 'aes'), /artifact 1: encryption "aes" is not known/],
    [(m: Record<string, any>) => (m.plan = 'nightly'), /: plan: expected an object/],
    [(m: Record<string, any>) => (m.parentId = 5), /parentId: expected a string, got a number/],
  ])('a broken manifest is refused naming the field (%#)', (breakIt, message) => {
    const m = copy();
    breakIt(m);
    const e = failure(() => backupManifest({ id: good.backupId, manifest: m }));
    expect(e.message).toMatch(/^the catalog's manifest of backup b-20261101T000000Z-abcd/);
    expect(e.message).toMatch(message);
  });
});
