// Pure logic: endpoints, names, secrets, config, retention.
import { inspect } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSettings, parseSize } from '../../src/config.js';
import { parseEndpoint } from '../../src/core/endpoints.js';
import { validateName } from '../../src/core/names.js';
import { planPrune } from '../../src/core/retention.js';
import { DbsError } from '../../src/errors.js';
import { Secret, redactText } from '../../src/secret.js';
import { tempDir } from '../support/testbed.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as DbsError).code;
  }
  return undefined;
}

describe('endpoints', () => {
  it.each([
    ['mysql://backup@db1:3307', { kind: 'mysql', host: 'db1', port: 3307, user: 'backup', url: 'mysql://backup@db1:3307' }],
    ['mysql://db1', { kind: 'mysql', host: 'db1', port: 3306, user: 'root' }],
    ['redis://127.0.0.1:6380/3', { kind: 'redis', host: '127.0.0.1', port: 6380, path: '3' }],
    ['sqlite:///var/lib/app.db', { kind: 'sqlite', path: '/var/lib/app.db', url: 'sqlite:///var/lib/app.db' }],
    ['catalog', { kind: 'catalog' }],
  ])('parses %s', (raw, want) => {
    expect(parseEndpoint(raw)).toMatchObject(want);
  });
  it.each([
    ['ftp://x', 'INVALID_ARGUMENT'],
    ['not a url', 'INVALID_ARGUMENT'],
    ['mysql://u:secret@h', 'INVALID_ARGUMENT'],
    ['sqlite://relative.db', 'INVALID_ARGUMENT'],
    ['redis://h/abc', 'INVALID_ARGUMENT'],
  ])('rejects %s', (raw, code) => {
    expect(codeOf(() => parseEndpoint(raw))).toBe(code);
  });
  it('never echoes a password given in the URL', () => {
    try {
      parseEndpoint('mysql://u:hunter2hunter2@h');
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2');
    }
  });
});

describe('names', () => {
  it.each(['', '   ', 'a\x07b', 'tab\there', '-x', 'a/b', 'x'.repeat(65), ' padded'])('rejects %j', (n) => {
    expect(codeOf(() => validateName(n, 'pool'))).toBe('INVALID_NAME');
  });
  it.each(['prod', 'prod-eu_1.main', 'Sicherung Nacht', 'バックアップ'])('accepts %j', (n) => {
    expect(validateName(n, 'pool')).toBe(n);
  });
});

describe('secrets', () => {
  it('redact themselves everywhere', () => {
    const s = new Secret('s3cr3t-value');
    expect(String(s)).toBe('***');
    expect(`${s}`).toBe('***');
    expect(JSON.stringify({ s })).toBe('{"s":"***"}');
    expect(inspect({ s })).not.toContain('s3cr3t');
    expect(s.reveal()).toBe('s3cr3t-value');
    expect(redactText('error near s3cr3t-value here', [s])).toBe('error near *** here');
  });
});

describe('config', () => {
  it('layers flags > env > file > defaults', async () => {
    const dir = tempDir('cfg');
    writeFileSync(join(dir, '.dbsrc.json'), JSON.stringify({ compression: 'gzip', partSize: '16MiB', concurrency: 2, home: '/from/file' }));
    const s = await loadSettings({ flags: {}, env: { DBS_CONCURRENCY: '3', HOME: dir }, cwd: dir });
    expect(s).toMatchObject({ compression: 'gzip', partSize: 16 * 1024 * 1024, concurrency: 3, home: '/from/file' });
    const f = await loadSettings({ flags: { home: '/flag' }, env: { DBS_HOME: '/env', HOME: dir }, cwd: dir });
    expect(f.home).toBe('/flag');
  });
  it('reports every problem at once with its path', async () => {
    const dir = tempDir('cfg');
    writeFileSync(join(dir, 'dbs.config.json'), JSON.stringify({ compression: 'lz4', partSize: '1KiB', concurrency: 0, colour: true }));
    const e = await loadSettings({ flags: {}, env: { HOME: dir }, cwd: dir }).catch((x: DbsError) => x);
    expect(e).toBeInstanceOf(DbsError);
    expect((e as DbsError).code).toBe('INVALID_CONFIG');
    const problems = (e as DbsError).details!.problems as string[];
    expect(problems).toHaveLength(4);
    expect(problems.join('\n')).toMatch(/compression.*lz4/);
    expect(problems.join('\n')).toMatch(/partSize/);
    expect(problems.join('\n')).toMatch(/concurrency/);
    expect(problems.join('\n')).toMatch(/colour: unknown setting/);
    expect(problems[0]).toContain('dbs.config.json');
  });
  it('parses sizes', () => {
    expect(parseSize('8MiB')).toBe(8 * 1024 * 1024);
    expect(parseSize('64mb')).toBe(64 * 1024 * 1024);
    expect(parseSize('1048576')).toBe(1048576);
    expect(parseSize('lots')).toBeUndefined();
  });
});

describe('retention', () => {
  const now = new Date('2026-11-21T12:00:00Z');
  const day = (d: number) => new Date(now.getTime() - d * 86_400_000).toISOString();
  const bk = (id: string, age: number, parentId: string | null = null) => ({ id, endedAt: day(age), parentId });
  it.each([
    ['keep-last 2', { keepLast: 2 }, [bk('a', 0), bk('b', 1), bk('c', 2), bk('d', 3)], ['c', 'd']],
    ['keep-days 2', { keepDays: 2 }, [bk('a', 0), bk('b', 1.5), bk('c', 2.5)], ['c']],
    ['newest always kept', { keepDays: 1 }, [bk('a', 10), bk('b', 20)], ['b']],
    ['keep forever', {}, [bk('a', 0), bk('b', 400)], []],
    ['parents of kept are kept', { keepLast: 1 }, [bk('inc2', 0, 'inc1'), bk('inc1', 1, 'full'), bk('full', 2), bk('old', 3)], ['old']],
    ['keep-forever', { keepForever: true }, [bk('a', 0), bk('b', 900)], []],
    // Two backups a day for 10 days: keep-daily 3 keeps the newest of each of the last 3 days.
    ['keep-daily 3', { keepDaily: 3 }, Array.from({ length: 20 }, (_, i) => bk(`d${i}`, i / 2)), Array.from({ length: 20 }, (_, i) => `d${i}`).filter((id) => !['d0', 'd2', 'd4'].includes(id))],
    // One backup a day for 60 days (2026-11-21 is a Saturday): newest of each of 2 ISO weeks.
    ['keep-weekly 2', { keepWeekly: 2 }, Array.from({ length: 60 }, (_, i) => bk(`w${i}`, i)), Array.from({ length: 60 }, (_, i) => `w${i}`).filter((id) => !['w0', 'w6'].includes(id))],
    ['keep-monthly 2', { keepMonthly: 2 }, Array.from({ length: 60 }, (_, i) => bk(`m${i}`, i)), Array.from({ length: 60 }, (_, i) => `m${i}`).filter((id) => !['m0', 'm21'].includes(id))],
    ['GFS union', { keepLast: 1, keepDaily: 2, keepMonthly: 2 }, Array.from({ length: 60 }, (_, i) => bk(`g${i}`, i)), Array.from({ length: 60 }, (_, i) => `g${i}`).filter((id) => !['g0', 'g1', 'g21'].includes(id))],
    ['a kept incremental keeps its whole chain', { keepLast: 1 }, [bk('i3', 0, 'i2'), bk('i2', 1, 'i1'), bk('i1', 2, 'f'), bk('f', 3), bk('f0', 4)], ['f0']],
  ])('%s', (_name, rule, backups, want) => {
    expect(planPrune(rule, backups, now).map((d) => d.id).sort()).toEqual([...want].sort());
  });
});
