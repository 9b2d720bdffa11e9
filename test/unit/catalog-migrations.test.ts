// Catalog migrations applied to a catalog an older dbs wrote, and the decoding of what the
// catalog gives back (pool configs as their driver kinds declare them).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
// The catalog's SQLite (node:sqlite): a second SQLite library must not open a file dbs has open
// in this process (src/store/sqlite.ts).
import { Db as Database } from '../../src/store/sqlite.js';
import { describe, expect, it } from 'vitest';
import { DbsError } from '../../src/errors.js';
import { driverKind } from '../../src/storage/registry.js';
import { Catalog } from '../../src/store/catalog.js';
import { migrations } from '../../src/store/migrations.js';
import { tempDir } from '../support/testbed.js';

const T = '2026-11-01T00:00:00.000Z';
const LATEST = Math.max(...migrations.map((m) => m.version));

/** A catalog as dbs with schema `upTo` left it, with a pool, a plan on it and a backup. */
function oldCatalog(upTo: number): string {
  const home = join(tempDir('h'), 'home');
  mkdirSync(home, { mode: 0o700 });
  const db = new Database(join(home, 'catalog.db'), {});
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  for (const m of migrations.filter((x) => x.version <= upTo)) {
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, T);
  }
  db.prepare("INSERT INTO meta VALUES ('catalog_id', 'catalog-old0000000')").run();
  const pool = db.prepare('INSERT INTO pools (id, name, type, config, remark, status, status_message, latency_ms, checked_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  pool.run('pool-aaaaaaaaaa', 'disk', 'local', JSON.stringify({ path: '/var/backups/dbs' }), 'the disk', 'online', '', 1.5, T, T, T);
  pool.run('pool-bbbbbbbbbb', 'far', 's3', JSON.stringify({ endpoint: 'http://s3.example:9000', bucket: 'dbs', prefix: 'p', region: 'us-east-1', pathStyle: true, accessKey: 'AK' }), '', 'offline', 'down', null, T, T, T);
  db.prepare("INSERT INTO secrets VALUES ('pool', 'pool-bbbbbbbbbb', 'secretKey', 'SK')").run();
  db.prepare(
    `INSERT INTO plans (id, name, status, pause_reason, source_kind, source, backup_type, selection, pool_id, schedule, retention, compression, options, remark, created_at, updated_at)
     VALUES ('plan-cccccccccc', 'nightly', 'active', '', 'sqlite', '{"url":"sqlite:///x.db"}', 'logical', '{}', 'pool-aaaaaaaaaa', '{"kind":"manual"}', '{"keepLast":3}', 'zstd', '{}', '', ?, ?)`,
  ).run(T, T);
  db.close();
  return home;
}

describe('migration 5: pool types are the drivers\' business', () => {
  it('rebuilds pools from a schema-4 catalog keeping rows, secrets, the plans foreign key and the unique name', () => {
    const home = oldCatalog(4);
    const c = Catalog.open(home);
    try {
      expect(c.schemaVersion()).toBe(LATEST);
      expect(c.listPools().map((p) => [p.id, p.name, p.type, p.config, p.remark, p.status, p.statusMessage, p.latencyMs, p.createdAt])).toEqual([
        ['pool-aaaaaaaaaa', 'disk', 'local', { path: '/var/backups/dbs' }, 'the disk', 'online', '', 1.5, T],
        ['pool-bbbbbbbbbb', 'far', 's3', { endpoint: 'http://s3.example:9000', bucket: 'dbs', prefix: 'p', region: 'us-east-1', pathStyle: true, accessKey: 'AK' }, '', 'offline', 'down', null, T],
      ]);
      expect(c.getSecret('pool', 'pool-bbbbbbbbbb', 'secretKey')).toBe('SK');
      expect(c.plansUsingPool('pool-aaaaaaaaaa')).toEqual([{ id: 'plan-cccccccccc', name: 'nightly' }]);
      expect(c.catalogId).toBe('catalog-old0000000');
      // The plans' REFERENCES still names pools, and it is enforced.
      expect(c.db.pragma('foreign_key_list(plans)')).toMatchObject([{ table: 'pools', from: 'pool_id', to: 'id' }]);
      expect(c.db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(() => c.db.prepare("UPDATE plans SET pool_id = 'pool-nowhere'").run()).toThrow(/FOREIGN KEY/);
      expect(() => c.deletePool('pool-aaaaaaaaaa')).toThrow(/FOREIGN KEY/);
      expect(() => c.insertPool({ id: 'pool-dddddddddd', name: 'disk', type: 'local', config: { path: '/x' }, remark: '' })).toThrow(/UNIQUE/);
      expect(c.db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'pools'").pluck().get()).not.toMatch(/IN \('local', 's3'\)/);
      expect(c.db.pragma('integrity_check', { simple: true })).toBe('ok');
      // A driver this schema never heard of is stored as data; config must be JSON.
      c.insertPool({ id: 'pool-eeeeeeeeee', name: 'tape', type: 'tape', config: { drive: '/dev/nst0' }, remark: '' });
      expect(c.getPool('pool-eeeeeeeeee')).toMatchObject({ type: 'tape', config: { drive: '/dev/nst0' } });
      expect(() => c.db.prepare("UPDATE pools SET config = 'not json' WHERE id = 'pool-eeeeeeeeee'").run()).toThrow(/CHECK/);
      expect(() => c.db.prepare("UPDATE pools SET type = '' WHERE id = 'pool-eeeeeeeeee'").run()).toThrow(/CHECK/);
    } finally {
      c.close();
    }
    // Opening again applies nothing twice.
    const again = Catalog.open(home);
    expect(again.schemaVersion()).toBe(LATEST);
    expect(again.listPools()).toHaveLength(3);
    again.close();
  });

  it('a catalog row whose config is not an object is an INVALID_RECORD naming the pool', () => {
    const home = oldCatalog(5);
    const db = new Database(join(home, 'catalog.db'));
    db.prepare("UPDATE pools SET config = '[1,2]' WHERE name = 'disk'").run();
    db.close();
    const c = Catalog.open(home);
    try {
      expect(() => c.findPool('disk')).toThrow(/the config of pool "disk" \(pool-aaaaaaaaaa\): expected an object/);
    } finally {
      c.close();
    }
  });
});

describe('migration 7: backup copies', () => {
  it('gives every existing backup its primary copy (ready, or missing as the backup was); a backup leaves with its last copy', () => {
    const home = oldCatalog(5);
    const db = new Database(join(home, 'catalog.db'));
    const ins = db.prepare(
      `INSERT INTO backups (id, plan_id, plan_name, task_id, pool_id, status, source_kind, backup_type, parent_id, raw_bytes, stored_bytes, started_at, ended_at, manifest)
       VALUES (?, 'plan-cccccccccc', 'nightly', NULL, 'pool-aaaaaaaaaa', ?, 'sqlite', 'snapshot', NULL, 100, ?, ?, ?, '{}')`,
    );
    ins.run('b-1', 'available', 40, T, T);
    ins.run('b-2', 'missing', 50, T, T);
    db.close();
    const c = Catalog.open(home);
    try {
      expect(c.listCopies('b-1').map((x) => [x.poolId, x.role, x.status, x.storedBytes, x.checkedAt, x.error])).toEqual([['pool-aaaaaaaaaa', 'primary', 'ready', 40, T, '']]);
      expect(c.listCopies('b-2').map((x) => [x.poolId, x.status])).toEqual([['pool-aaaaaaaaaa', 'missing']]);
      expect(c.listBackups({ poolId: 'pool-aaaaaaaaaa', copyStatus: ['ready'] }).map((b) => b.id)).toEqual(['b-1']);
      expect(c.listBackups({ poolId: 'pool-bbbbbbbbbb' })).toEqual([]);
      c.upsertCopy({ backupId: 'b-1', poolId: 'pool-bbbbbbbbbb', status: 'failed', error: 'boom' });
      expect(c.listBackups({ poolId: 'pool-bbbbbbbbbb' }).map((b) => b.id)).toEqual(['b-1']);
      expect(c.listBackups({ poolId: 'pool-bbbbbbbbbb', copyStatus: ['ready'] })).toEqual([]);
      c.upsertCopy({ backupId: 'b-1', poolId: 'pool-bbbbbbbbbb', status: 'ready', storedBytes: 40 });
      expect(c.getCopy('b-1', 'pool-bbbbbbbbbb')).toMatchObject({ role: 'replica', status: 'ready', error: 'boom', storedBytes: 40 });
      expect(c.deleteCopy('b-1', 'pool-aaaaaaaaaa')).toBe(false);
      expect(c.getBackup('b-1')).toBeDefined();
      expect(c.deleteCopy('b-1', 'pool-bbbbbbbbbb')).toBe(true);
      expect(c.getBackup('b-1')).toBeUndefined();
    } finally {
      c.close();
    }
  });
});

describe('driver kinds decode their config', () => {
  const err = (fn: () => unknown): DbsError => {
    try {
      fn();
    } catch (e) {
      return e as DbsError;
    }
    throw new Error('did not throw');
  };
  it.each([
    ['local', { path: 'relative' }, /path: expected an absolute path/],
    ['local', { dir: '/x' }, /path: expected a string, got nothing/],
    ['s3', { endpoint: 'ftp://x', bucket: 'dbs', prefix: '', region: 'r', pathStyle: true }, /endpoint: "ftp:\/\/x" is not an http\(s\) URL/],
    ['s3', { endpoint: 'http://x', bucket: 'Bad_Bucket', prefix: '', region: 'r', pathStyle: true }, /bucket: "Bad_Bucket" is not a bucket name/],
    ['s3', { endpoint: 'http://x', bucket: 'dbs', prefix: '', region: 'r', pathStyle: 'yes' }, /pathStyle: expected true or false/],
    ['s3', { endpoint: 'http://x', bucket: 'dbs', prefix: '', region: 'r', pathStyle: true, accessKey: 5 }, /accessKey: expected a string/],
  ])('%s %j is refused', (type, config, message) => {
    const e = err(() => driverKind(type).decode(config, 'the config of pool "p"'));
    expect(e).toBeInstanceOf(DbsError);
    expect(e.code).toBe('INVALID_RECORD');
    expect(e.message).toMatch(/^the config of pool "p": /);
    expect(e.message).toMatch(message);
  });

  it('a valid config decodes to itself', () => {
    const s3 = { endpoint: 'http://x', bucket: 'dbs', prefix: 'a/b', region: 'r', pathStyle: false };
    expect(driverKind('s3').decode(s3, 'x')).toEqual(s3);
    expect(driverKind('local').decode({ path: '/srv' }, 'x')).toEqual({ path: '/srv' });
  });
});

describe('migration 6: the gateway', () => {
  it('adds an empty gateway table to a schema-5 catalog that holds one row at most', () => {
    const home = oldCatalog(5);
    const c = Catalog.open(home);
    try {
      expect(c.getGateway()).toBeUndefined();
      expect(c.listPools()).toHaveLength(2);
      const g = c.insertGateway({ address: '127.0.0.2', bandwidth: 1024, bandwidthText: '1KiB/s' });
      expect(g).toMatchObject({ address: '127.0.0.2', bandwidth: 1024, bandwidthText: '1KiB/s' });
      expect(() => c.insertGateway({ address: '::1', bandwidth: null, bandwidthText: null })).toThrow(/PRIMARY KEY|UNIQUE/);
      expect(c.updateGateway({ bandwidth: null, bandwidthText: null })).toMatchObject({ address: '127.0.0.2', bandwidth: null });
      expect(() => c.db.prepare('UPDATE gateway SET bandwidth = 0').run()).toThrow(/CHECK/);
      c.deleteGateway();
      expect(c.getGateway()).toBeUndefined();
    } finally {
      c.close();
    }
  });
});
