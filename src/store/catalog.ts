// The SQLite catalog: the local index of pools, plans, tasks, backups, restores and events.
// It is the only module that speaks SQL. It knows nothing of engines or commands.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { DbsError } from '../errors.js';
import { migrations } from './migrations.js';

export type Db = Database.Database;

export const CATALOG_FILE = 'catalog.db';

export type PoolType = 'local' | 's3';
export type PoolStatus = 'online' | 'offline' | 'unknown';

export interface LocalPoolConfig {
  path: string;
}
export interface S3PoolConfig {
  endpoint: string;
  bucket: string;
  prefix: string;
  region: string;
  pathStyle: boolean;
  accessKey?: string;
}
export type PoolConfig = LocalPoolConfig | S3PoolConfig;

export interface PoolRecord {
  id: string;
  name: string;
  type: PoolType;
  config: PoolConfig;
  remark: string;
  status: PoolStatus;
  statusMessage: string;
  latencyMs: number | null;
  checkedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface EventRecord {
  id: number;
  resourceKind: string;
  resourceId: string;
  type: string;
  level: 'info' | 'warning' | 'error';
  message: string;
  count: number;
  firstAt: string;
  lastAt: string;
}

export type Clock = () => Date;
export const systemClock: Clock = () => new Date();

/** Short random id with a kind prefix, e.g. `pool-3f9a1c2b7d`. */
export function newId(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

interface PoolRow {
  id: string;
  name: string;
  type: PoolType;
  config: string;
  remark: string;
  status: PoolStatus;
  status_message: string;
  latency_ms: number | null;
  checked_at: string | null;
  created_at: string;
  updated_at: string;
}

function poolFromRow(r: PoolRow): PoolRecord {
  return {
    id: r.id,
    name: r.name,
    type: r.type,
    config: JSON.parse(r.config) as PoolConfig,
    remark: r.remark,
    status: r.status,
    statusMessage: r.status_message,
    latencyMs: r.latency_ms,
    checkedAt: r.checked_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export class Catalog {
  readonly db: Db;
  readonly path: string;
  readonly #clock: Clock;

  private constructor(db: Db, path: string, clock: Clock) {
    this.db = db;
    this.path = path;
    this.#clock = clock;
  }

  /**
   * Opens (creating when missing) the catalog in `home`: the folder is made 0700 and the file
   * 0600, WAL mode and a busy timeout let several dbs processes share it, and pending
   * migrations are applied.
   */
  static open(home: string, clock: Clock = systemClock): Catalog {
    try {
      mkdirSync(home, { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw new DbsError('INVALID_PATH', `cannot create the dbs home ${home}`, {
        cause,
        hint: 'choose a writable folder with --home DIR or DBS_HOME',
      });
    }
    const path = join(home, CATALOG_FILE);
    try {
      if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
      chmodSync(path, 0o600);
    } catch (cause) {
      throw new DbsError('INVALID_PATH', `cannot create the catalog file ${path}`, {
        cause,
        hint: 'check the permissions of the dbs home (--home DIR or DBS_HOME)',
      });
    }
    let db: Db;
    try {
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      db.pragma('foreign_keys = ON');
      db.pragma('synchronous = NORMAL');
    } catch (cause) {
      throw new DbsError('IO_ERROR', `cannot open the catalog ${path}: ${(cause as Error).message}`, {
        cause,
        hint: 'the file may be damaged or not a dbs catalog',
      });
    }
    const catalog = new Catalog(db, path, clock);
    catalog.#migrate();
    return catalog;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  now(): string {
    return this.#clock().toISOString();
  }

  #migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
    const applied = new Set(
      (this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
    );
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, this.now());
      }).immediate();
    }
    const known = Math.max(...migrations.map((m) => m.version));
    const newest = (this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v;
    if (newest > known) {
      throw new DbsError('REFUSED', `the catalog ${this.path} has schema version ${newest}, newer than this dbs knows (${known})`, {
        hint: 'upgrade dbs before using this catalog',
      });
    }
    this.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('catalog_id', ?)").run(newId('catalog'));
  }

  schemaVersion(): number {
    return (this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v;
  }

  get catalogId(): string {
    return (this.db.prepare("SELECT value FROM meta WHERE key = 'catalog_id'").get() as { value: string }).value;
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  // ---- pools ---------------------------------------------------------------------------

  insertPool(p: Omit<PoolRecord, 'createdAt' | 'updatedAt' | 'status' | 'statusMessage' | 'latencyMs' | 'checkedAt'> &
    Partial<Pick<PoolRecord, 'status' | 'statusMessage' | 'latencyMs' | 'checkedAt'>>): PoolRecord {
    const now = this.now();
    this.db
      .prepare(
        `INSERT INTO pools (id, name, type, config, remark, status, status_message, latency_ms, checked_at, created_at, updated_at)
         VALUES (@id, @name, @type, @config, @remark, @status, @statusMessage, @latencyMs, @checkedAt, @now, @now)`,
      )
      .run({
        id: p.id,
        name: p.name,
        type: p.type,
        config: JSON.stringify(p.config),
        remark: p.remark,
        status: p.status ?? 'unknown',
        statusMessage: p.statusMessage ?? '',
        latencyMs: p.latencyMs ?? null,
        checkedAt: p.checkedAt ?? null,
        now,
      });
    return this.getPool(p.id)!;
  }

  getPool(id: string): PoolRecord | undefined {
    const row = this.db.prepare('SELECT * FROM pools WHERE id = ?').get(id) as PoolRow | undefined;
    return row && poolFromRow(row);
  }

  /** Finds a pool by id first, then by its unique name. */
  findPool(idOrName: string): PoolRecord | undefined {
    const row = this.db.prepare('SELECT * FROM pools WHERE id = ? UNION ALL SELECT * FROM pools WHERE name = ? LIMIT 1').get(idOrName, idOrName) as
      | PoolRow
      | undefined;
    return row && poolFromRow(row);
  }

  listPools(): PoolRecord[] {
    return (this.db.prepare('SELECT * FROM pools ORDER BY created_at, name').all() as PoolRow[]).map(poolFromRow);
  }

  updatePool(id: string, changes: Partial<Pick<PoolRecord, 'name' | 'remark' | 'config'>>): PoolRecord {
    const cur = this.getPool(id);
    if (!cur) throw new DbsError('POOL_NOT_FOUND', `pool ${id} not found`);
    this.db
      .prepare('UPDATE pools SET name = ?, remark = ?, config = ?, updated_at = ? WHERE id = ?')
      .run(changes.name ?? cur.name, changes.remark ?? cur.remark, JSON.stringify(changes.config ?? cur.config), this.now(), id);
    return this.getPool(id)!;
  }

  setPoolStatus(id: string, status: PoolStatus, message: string, latencyMs: number | null): void {
    this.db
      .prepare('UPDATE pools SET status = ?, status_message = ?, latency_ms = ?, checked_at = ? WHERE id = ?')
      .run(status, message, latencyMs, this.now(), id);
  }

  deletePool(id: string): void {
    this.transaction(() => {
      this.db.prepare('DELETE FROM secrets WHERE owner_kind = ? AND owner_id = ?').run('pool', id);
      this.db.prepare('DELETE FROM pools WHERE id = ?').run(id);
    });
  }

  /** Plans whose pool is this pool (unbind is refused while any exist). */
  plansUsingPool(poolId: string): { id: string; name: string }[] {
    return this.db.prepare('SELECT id, name FROM plans WHERE pool_id = ? ORDER BY name').all(poolId) as { id: string; name: string }[];
  }

  // ---- secrets -------------------------------------------------------------------------

  setSecret(ownerKind: string, ownerId: string, name: string, value: string | undefined): void {
    if (value === undefined) {
      this.db.prepare('DELETE FROM secrets WHERE owner_kind = ? AND owner_id = ? AND name = ?').run(ownerKind, ownerId, name);
      return;
    }
    this.db
      .prepare('INSERT INTO secrets (owner_kind, owner_id, name, value) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET value = excluded.value')
      .run(ownerKind, ownerId, name, value);
  }

  getSecret(ownerKind: string, ownerId: string, name: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM secrets WHERE owner_kind = ? AND owner_id = ? AND name = ?').get(ownerKind, ownerId, name) as
      | { value: string }
      | undefined;
    return row?.value;
  }

  // ---- events --------------------------------------------------------------------------

  /**
   * Records an event. A repeat of the newest event of the same resource and type with the
   * same message bumps its count and last time instead of adding a row.
   */
  recordEvent(e: Pick<EventRecord, 'resourceKind' | 'resourceId' | 'type' | 'level' | 'message'>): void {
    const now = this.now();
    this.transaction(() => {
      const last = this.db
        .prepare('SELECT id, message, level FROM events WHERE resource_kind = ? AND resource_id = ? AND type = ? ORDER BY id DESC LIMIT 1')
        .get(e.resourceKind, e.resourceId, e.type) as { id: number; message: string; level: string } | undefined;
      if (last && last.message === e.message && last.level === e.level) {
        this.db.prepare('UPDATE events SET count = count + 1, last_at = ? WHERE id = ?').run(now, last.id);
      } else {
        this.db
          .prepare('INSERT INTO events (resource_kind, resource_id, type, level, message, first_at, last_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
          .run(e.resourceKind, e.resourceId, e.type, e.level, e.message, now, now);
      }
    });
  }

  listEvents(filter: { resourceKind?: string; resourceId?: string; limit?: number } = {}): EventRecord[] {
    const rows = this.db
      .prepare(
        `SELECT id, resource_kind AS resourceKind, resource_id AS resourceId, type, level, message, count, first_at AS firstAt, last_at AS lastAt
         FROM events WHERE (@kind IS NULL OR resource_kind = @kind) AND (@rid IS NULL OR resource_id = @rid)
         ORDER BY last_at DESC, id DESC LIMIT @limit`,
      )
      .all({ kind: filter.resourceKind ?? null, rid: filter.resourceId ?? null, limit: filter.limit ?? 100 });
    return rows as EventRecord[];
  }
}
