// The SQLite catalog: the local index of pools, plans, tasks, backups, restores and events.
// It is the only module that speaks SQL. It knows nothing of engines or commands.
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import { ensureHome, type HomeState } from './home.js';
import { join } from 'node:path';
import { Db, sqliteVersion } from './sqlite.js';
import { DbsError } from '../errors.js';
import { invalid, object, type JsonObject } from '../decode.js';
import { migrations } from './migrations.js';

export { Db, sqliteVersion };

export const CATALOG_FILE = 'catalog.db';

export type PoolStatus = 'online' | 'offline' | 'unknown';

export interface PoolRecord {
  id: string;
  name: string;
  /** The driver kind (storage/registry.ts); the catalog does not know the list. */
  type: string;
  /** The driver's config as data (JSON, no secrets); its kind decodes it (storage/registry.ts). */
  config: JsonObject;
  remark: string;
  status: PoolStatus;
  statusMessage: string;
  latencyMs: number | null;
  checkedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** The one gateway of a catalog (migration 6): egress address and bandwidth cap. */
export interface GatewayRecord {
  /** An IPv4 or IPv6 address of this host. */
  address: string;
  /** Bytes per second; null: no cap. */
  bandwidth: number | null;
  /** The cap as the user wrote it (e.g. "20MiB/s"). */
  bandwidthText: string | null;
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

/** An alert (migration 11): rules and targets as the user wrote them (core/alerts.ts parses them). */
export interface AlertRecord {
  id: string;
  name: string;
  /** The plan it watches; null when it watches every plan. */
  planId: string | null;
  allPlans: boolean;
  rules: string[];
  targets: string[];
  remark: string;
  createdAt: string;
  updatedAt: string;
}

/** Whether an alert fires for one plan, since when and why. */
export interface AlertStateRecord {
  alertId: string;
  planId: string;
  state: 'ok' | 'firing';
  reason: string;
  since: string;
  updatedAt: string;
}

export type PlanStatus = 'active' | 'paused';
export type TaskStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'interrupted';
export type RestoreStatus = 'running' | 'succeeded' | 'failed' | 'interrupted';

export interface PlanRecord {
  id: string;
  name: string;
  status: PlanStatus;
  pauseReason: string;
  sourceKind: string;
  /** Redacted source: the URL without password and its parts. */
  source: Record<string, unknown> & { url: string };
  backupType: string;
  selection: Record<string, unknown>;
  poolId: string;
  schedule: Record<string, unknown> & { kind: string };
  retention: Record<string, unknown>;
  compression: string;
  options: Record<string, unknown>;
  remark: string;
  createdAt: string;
  updatedAt: string;
}

export interface TaskRecord {
  id: string;
  planId: string;
  planName: string;
  trigger: string;
  status: TaskStatus;
  queuedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  rawBytes: number | null;
  storedBytes: number | null;
  backupId: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  stderrTail: string | null;
  pid: number | null;
  host: string | null;
  /** The pool the task ran against (null: recorded before migration 8 without a backup or plan). */
  poolId?: string | null;
  backupType?: string | null;
  /** What was asked, as it was asked (trigger, type, selection, pool); null before migration 8. */
  request?: Record<string, unknown> | null;
  /** Monitoring summary (migration 10; null before it or while running): see RunUsage. */
  cpuSeconds?: number | null;
  childCpuSeconds?: number | null;
  cpuAvgPct?: number | null;
  cpuPeakPct?: number | null;
  rssPeakBytes?: number | null;
  bytesIn?: number | null;
  bytesOut?: number | null;
}

export interface BackupRecord {
  id: string;
  planId: string;
  planName: string;
  taskId: string | null;
  poolId: string;
  /** missing: dbs saw the backup's manifest gone from its pool (verify, restore, pool check). */
  status: 'available' | 'deleting' | 'missing';
  sourceKind: string;
  backupType: string;
  parentId: string | null;
  rawBytes: number;
  storedBytes: number;
  startedAt: string;
  endedAt: string;
  manifest: Record<string, unknown>;
}

/**
 * ready: a copy. copying / failed: a copy being made or one that did not finish (never a copy).
 * missing: its manifest is gone. deleting: its delete started and has not finished (its pool did
 * not answer): never a copy; later passes delete it again.
 */
export type CopyStatus = 'ready' | 'copying' | 'failed' | 'missing' | 'deleting';

/** One pool's copy of a backup (migration 7). */
export interface CopyRecord {
  backupId: string;
  poolId: string;
  /** primary: the pool the backup was written to; replica: a copy made from another pool. */
  role: 'primary' | 'replica';
  /** Only `ready` is a copy: failed and copying are attempts, missing a copy whose manifest is gone. */
  status: CopyStatus;
  storedBytes: number | null;
  /** When the copy's artifacts were last checked against the manifest's sha256. */
  checkedAt: string | null;
  error: string;
  attempts: number;
  createdAt: string;
  updatedAt: string;
}

export interface RestoreRecord {
  id: string;
  backupId: string;
  planId: string;
  status: RestoreStatus;
  target: string;
  options: Record<string, unknown>;
  startedAt: string;
  endedAt: string | null;
  bytes: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  pid: number | null;
  host: string | null;
  /** Monitoring summary (migration 10; null before it or while running): see RunUsage. */
  cpuSeconds?: number | null;
  childCpuSeconds?: number | null;
  cpuAvgPct?: number | null;
  cpuPeakPct?: number | null;
  rssPeakBytes?: number | null;
  bytesIn?: number | null;
  bytesOut?: number | null;
}

export interface LockRecord {
  name: string;
  pid: number;
  host: string;
  owner: string;
  acquiredAt: string;
  /** The holder's last renewal of its lease. */
  heartbeatAt: string | null;
  /** When the lease ends unless renewed; a holder on another host is dead after it. */
  expiresAt: string | null;
  /** The holder's PID namespace (/proc/self/ns/pid), when known. */
  pidNs: string | null;
}

const JSON_COLUMNS = new Set(['source', 'selection', 'schedule', 'retention', 'options', 'manifest', 'config', 'request']);

/** snake_case column -> camelCase field, once per name (a regex per column of every row was most of `task list --json`). */
const camelNames = new Map<string, string>();
function camelOf(k: string): string {
  let c = camelNames.get(k);
  if (c === undefined) camelNames.set(k, (c = k.replace(/_([a-z])/g, (_m, x: string) => x.toUpperCase())));
  return c;
}

/** snake_case row -> camelCase record, parsing the JSON columns. */
function fromRow<T>(row: Record<string, unknown> | undefined): T | undefined {
  if (!row) return undefined;
  const out: Record<string, unknown> = {};
  for (const k in row) {
    const v = row[k];
    out[camelOf(k)] = JSON_COLUMNS.has(k) && typeof v === 'string' ? JSON.parse(v) : v;
  }
  return out as T;
}

/** camelCase patch -> snake_case columns, serializing JSON columns. */
function toColumns(patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    const col = k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    out[col] = JSON_COLUMNS.has(col) ? JSON.stringify(v) : v;
  }
  return out;
}

/** Filters and paging of the inventory lists (backup, task, restore list); all optional. */
export interface ListQuery {
  planId?: string;
  poolId?: string;
  backupType?: string;
  status?: string;
  /** ISO times, inclusive bounds on the list's time column. */
  since?: string;
  until?: string;
  /** Keyset paging: only rows older than this one (its time and id). */
  before?: { at: string; id: string };
  offset?: number;
  /** undefined: every row (callers stream them). */
  limit?: number;
  backupId?: string;
}

/** A backup row of a list: no manifest (lists never read the manifest column). */
export type BackupListRow = Omit<BackupRecord, 'manifest'> & { poolName: string; copies: { pool: string; role: string; status: string }[] };

export type BackupGroupBy = 'plan' | 'pool' | 'type' | 'day';
export type TaskGroupBy = BackupGroupBy | 'status' | 'trigger';
export type RestoreGroupBy = BackupGroupBy | 'status';

export interface BackupGroup {
  key: string;
  count: number;
  rawBytes: number;
  storedBytes: number;
  oldest: string;
  newest: string;
}

/** WHERE and paging of a list over `table` (alias t) whose time column is `at`. */
function listWhere(q: ListQuery, cols: { at: string; type: string; pool: string; plan: string; poolByCopy?: boolean }): { where: string; params: Record<string, unknown> } {
  const w: string[] = [];
  const params: Record<string, unknown> = {};
  const add = (sql: string, name: string, v: unknown) => {
    if (v === undefined) return;
    w.push(sql);
    params[name] = v;
  };
  add(`${cols.plan} = @plan`, 'plan', q.planId);
  // Backups: those with a copy in the pool (ready, or missing from it); a failed copy is no copy.
  add(cols.poolByCopy ? "t.id IN (SELECT backup_id FROM backup_copies WHERE pool_id = @pool AND status IN ('ready', 'missing'))" : `${cols.pool} = @pool`, 'pool', q.poolId);
  add(`${cols.type} = @type`, 'type', q.backupType);
  add('t.status = @status', 'status', q.status);
  add(`${cols.at} >= @since`, 'since', q.since);
  add(`${cols.at} <= @until`, 'until', q.until);
  add('t.backup_id = @backupId', 'backupId', q.backupId);
  if (q.before) {
    w.push(`(${cols.at} < @beforeAt OR (${cols.at} = @beforeAt AND t.id < @beforeId))`);
    params.beforeAt = q.before.at;
    params.beforeId = q.before.id;
  }
  return { where: w.length ? `WHERE ${w.join(' AND ')}` : '', params };
}

function pageSql(q: ListQuery, params: Record<string, unknown>): string {
  params.limit = q.limit ?? -1;
  params.offset = q.offset ?? 0;
  return 'LIMIT @limit OFFSET @offset';
}

const BACKUP_COLS = { at: 't.ended_at', type: 't.backup_type', pool: 't.pool_id', plan: 't.plan_id', poolByCopy: true };
const TASK_COLS = { at: 't.queued_at', type: 't.backup_type', pool: 't.pool_id', plan: 't.plan_id' };
const RESTORE_COLS = { at: 't.started_at', type: 'b.backup_type', pool: 'b.pool_id', plan: 't.plan_id' };

/**
 * What a task or restore used, summed over its samples: CPU seconds of dbs and its children,
 * average and peak CPU % (100 = one core), peak RSS, bytes read from the source and sent to
 * the pool (a restore: read from the pool, written to the target).
 */
export interface RunUsage {
  cpuSeconds: number;
  /** The part of cpuSeconds that the run's programs used (the rest is the dbs process's). */
  childCpuSeconds: number;
  cpuAvgPct: number;
  cpuPeakPct: number;
  rssPeakBytes: number;
  bytesIn: number;
  bytesOut: number;
}

/** One monitoring sample (table task_samples). `t`: end of the interval it covers, Unix ms. */
export interface SampleRecord {
  taskId: string;
  t: number;
  spanMs: number;
  cpuPct: number;
  rssBytes: number;
  bytesIn: number;
  bytesOut: number;
  /** Bytes out of each transform stage of the data path so far (compress, encrypt); absent when none. */
  stages?: Record<string, number>;
}

/** What the metrics of one plan are read from (`metricsRows`). */
export interface PlanMetricsRow {
  name: string;
  status: PlanStatus;
  sourceKind: string;
  backupType: string;
  /** The name of the plan's pool (its id when the pool row is gone). */
  pool: string;
  running: boolean;
  /** The newest task that ended (succeeded, failed or interrupted). */
  lastRun: { status: TaskStatus; startedAt: string | null; endedAt: string | null } | null;
  /** The newest succeeded task. */
  lastSuccess: { startedAt: string | null; endedAt: string | null; rawBytes: number | null; storedBytes: number | null } | null;
  /** The end of the newest succeeded restore of one of the plan's backups. */
  lastRestoreAt: string | null;
  /** What the newest ended task used (null when it has no summary: before migration 10). */
  lastUsage: { cpuSeconds: number | null; rssPeakBytes: number | null; bytesIn: number | null; bytesOut: number | null } | null;
}

/** What the metrics of one pool are read from: its last known status and its ready copies. */
export interface PoolMetricsRow {
  name: string;
  type: string;
  status: PoolStatus;
  checkedAt: string | null;
  /** Incomplete uploads of dead tasks the last sweep of the pool found (null: never swept). */
  orphanUploads: number | null;
  orphansCheckedAt: string | null;
  backups: number;
  rawBytes: number;
  storedBytes: number;
}

/** task_samples.stages read back: an object of byte totals, or INVALID_RECORD naming the run. */
function decodeStages(text: string, runId: string): Record<string, number> {
  const what = `the stage counters of a sample of ${runId}`;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw invalid(what, 'not JSON');
  }
  const o = object(v, what);
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(o)) {
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw invalid(what, `${k} is not a byte count`);
    out[k] = n;
  }
  return out;
}

export type Clock = () => Date;
export const systemClock: Clock = () => new Date();

/** Short random id with a kind prefix, e.g. `pool-3f9a1c2b7d`. */
export function newId(prefix: string): string {
  // node:crypto is loaded at the first id, not with the catalog: a read-only command (plan
  // list) never needs it, and loading it is a tenth of such a command's start-up (issue 17).
  return `${prefix}-${process.getBuiltinModule('node:crypto').randomBytes(5).toString('hex')}`;
}

interface PoolRow {
  id: string;
  name: string;
  type: string;
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
  const what = `the config of pool ${JSON.stringify(r.name)} (${r.id})`;
  let config: unknown;
  try {
    config = JSON.parse(r.config);
  } catch {
    throw invalid(what, 'not JSON');
  }
  return {
    id: r.id,
    name: r.name,
    type: r.type,
    config: object(config, what),
    remark: r.remark,
    status: r.status,
    statusMessage: r.status_message,
    latencyMs: r.latency_ms,
    checkedAt: r.checked_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}



/**
 * Groups by the local calendar day of `column` (an ISO UTC time), or by whatever `query` keys
 * (column undefined). SQLite's date(x, 'localtime') calls the C library's localtime per row:
 * 0.2 s of `backup list --group-by day` at 100k backups. So the query groups by UTC hour and the
 * hours merge into local days here, which is exact while the zone's offset is a whole number of
 * hours for all of an hour (local midnight is then on a UTC hour); otherwise (a :30 or :45 zone,
 * a change of offset inside an hour, a time that is not ISO) SQLite's localtime decides.
 */
function byDay(column: string | undefined, query: (dayKey: string) => BackupGroup[]): BackupGroup[] {
  if (!column) return query('NULL');
  const days = new Map<string, BackupGroup>();
  const pad = (n: number) => String(n).padStart(2, '0');
  for (const h of query(`substr(${column}, 1, 13)`)) {
    const t = Date.parse(`${String(h.key)}:00:00.000Z`);
    const a = new Date(t);
    const off = a.getTimezoneOffset();
    if (!/^\d{4}-\d\d-\d\dT\d\d$/.test(String(h.key)) || !Number.isFinite(t) || off % 60 !== 0 || new Date(t + 3_599_999).getTimezoneOffset() !== off) {
      return query(`date(${column}, 'localtime')`);
    }
    const day = `${a.getFullYear()}-${pad(a.getMonth() + 1)}-${pad(a.getDate())}`;
    const g = days.get(day);
    if (!g) days.set(day, { ...h, key: day });
    else {
      g.count += h.count;
      g.rawBytes += h.rawBytes;
      g.storedBytes += h.storedBytes;
      if (h.oldest < g.oldest) g.oldest = h.oldest;
      if (h.newest > g.newest) g.newest = h.newest;
    }
  }
  return [...days.values()];
}

export class Catalog {
  readonly db: Db;
  readonly path: string;
  readonly #clock: Clock;
  /** What opening did to the catalog folder (a mode tightened to 0700), for the command to say. */
  homeState: HomeState = {};

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
    const homeState = ensureHome(home);
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
      db = new Db(path);
      // secure_delete: a replaced secret (plan update switching a copied password to a
      // reference) is zeroed, not left in a free page. One exec for all: start-up.
      db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON');
    } catch (cause) {
      throw new DbsError('IO_ERROR', `cannot open the catalog ${path}: ${(cause as Error).message}`, {
        cause,
        hint: 'the file may be damaged or not a dbs catalog',
      });
    }
    const catalog = new Catalog(db, path, clock);
    catalog.homeState = homeState;
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
      // PRAGMA foreign_keys is a no-op inside a transaction: switch it around the transaction.
      if (m.foreignKeysOff) this.db.pragma('foreign_keys = OFF');
      try {
        this.db.transaction(() => {
          // Another dbs process may have applied it since the read above (first use, concurrently).
          if (this.db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version)) return;
          this.db.exec(m.sql);
          if (m.foreignKeysOff) {
            const broken = this.db.pragma('foreign_key_check') as unknown[];
            if (broken.length) {
              throw new DbsError('INVALID_RECORD', `the catalog ${this.path}: migration ${m.version} would leave ${broken.length} broken reference(s); nothing was changed`, {
                hint: 'restore the catalog from a copy, or report it',
              });
            }
          }
          this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, this.now());
        }).immediate();
      } finally {
        if (m.foreignKeysOff) this.db.pragma('foreign_keys = ON');
      }
    }
    const known = Math.max(...migrations.map((m) => m.version));
    const newest = (this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v;
    if (newest > known) {
      throw new DbsError('REFUSED', `the catalog ${this.path} has schema version ${newest}, newer than this dbs knows (${known})`, {
        hint: 'upgrade dbs before using this catalog',
      });
    }
    // Only when missing: each open made an id (node:crypto) and a write for nothing.
    if (!this.db.prepare("SELECT 1 FROM meta WHERE key = 'catalog_id'").get()) {
      this.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('catalog_id', ?)").run(newId('catalog'));
    }
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

  /** Records what the last sweep of the pool's stale uploads found (the orphan-uploads metric). */
  setPoolOrphanUploads(id: string, found: number): void {
    this.db.prepare('UPDATE pools SET orphan_uploads = ?, orphans_checked_at = ? WHERE id = ?').run(found, this.now(), id);
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

  // ---- gateway -------------------------------------------------------------------------

  getGateway(): GatewayRecord | undefined {
    return fromRow<GatewayRecord>(this.db.prepare('SELECT address, bandwidth, bandwidth_text, created_at, updated_at FROM gateway WHERE id = 1').get() as Record<string, unknown> | undefined);
  }

  /** Inserts the gateway; a second one is a PRIMARY KEY violation (the caller maps it). */
  insertGateway(g: Pick<GatewayRecord, 'address' | 'bandwidth' | 'bandwidthText'>): GatewayRecord {
    const now = this.now();
    this.db.prepare('INSERT INTO gateway (id, address, bandwidth, bandwidth_text, created_at, updated_at) VALUES (1, ?, ?, ?, ?, ?)').run(g.address, g.bandwidth, g.bandwidthText, now, now);
    return this.getGateway()!;
  }

  updateGateway(changes: Partial<Pick<GatewayRecord, 'address' | 'bandwidth' | 'bandwidthText'>>): GatewayRecord {
    const cur = this.getGateway();
    if (!cur) throw new DbsError('NOT_FOUND', 'there is no gateway', { hint: 'create one with: dbs gateway create --ip ADDR' });
    const next = { ...cur, ...Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)) };
    this.db.prepare('UPDATE gateway SET address = ?, bandwidth = ?, bandwidth_text = ?, updated_at = ? WHERE id = 1').run(next.address, next.bandwidth, next.bandwidthText, this.now());
    return this.getGateway()!;
  }

  deleteGateway(): void {
    this.db.prepare('DELETE FROM gateway WHERE id = 1').run();
  }

  // ---- generic helpers -------------------------------------------------------------------

  #insert(table: string, record: Record<string, unknown>): void {
    const cols = toColumns(record);
    const names = Object.keys(cols);
    this.db.prepare(`INSERT INTO ${table} (${names.join(', ')}) VALUES (${names.map((n) => `@${n}`).join(', ')})`).run(cols);
  }

  #update(table: string, id: string, patch: Record<string, unknown>, idColumn = 'id'): void {
    const cols = toColumns(patch);
    const names = Object.keys(cols);
    if (!names.length) return;
    this.db.prepare(`UPDATE ${table} SET ${names.map((n) => `${n} = @${n}`).join(', ')} WHERE ${idColumn} = @__id`).run({ ...cols, __id: id });
  }

  // ---- plans ---------------------------------------------------------------------------

  insertPlan(p: Omit<PlanRecord, 'createdAt' | 'updatedAt'>): PlanRecord {
    const now = this.now();
    this.#insert('plans', { ...p, createdAt: now, updatedAt: now });
    return this.getPlan(p.id)!;
  }

  getPlan(id: string): PlanRecord | undefined {
    return fromRow<PlanRecord>(this.db.prepare('SELECT * FROM plans WHERE id = ?').get(id) as Record<string, unknown>);
  }

  findPlan(idOrName: string): PlanRecord | undefined {
    return fromRow<PlanRecord>(
      this.db.prepare('SELECT * FROM plans WHERE id = ? UNION ALL SELECT * FROM plans WHERE name = ? LIMIT 1').get(idOrName, idOrName) as Record<string, unknown>,
    );
  }

  listPlans(filter: { poolId?: string } = {}): PlanRecord[] {
    return (this.db.prepare('SELECT * FROM plans WHERE (@pool IS NULL OR pool_id = @pool) ORDER BY created_at, name').all({ pool: filter.poolId ?? null }) as Record<string, unknown>[]).map(
      (r) => fromRow<PlanRecord>(r)!,
    );
  }

  /**
   * What the daemon schedules by, per plan: its status and stored schedule as raw text (no
   * decoding), in the order of listPlans; a cheap way to see which plans changed.
   */
  planScheduleKeys(): { id: string; key: string }[] {
    return this.db.prepare("SELECT id, status || ' ' || schedule AS key FROM plans ORDER BY created_at, name").all() as { id: string; key: string }[];
  }

  updatePlan(id: string, patch: Partial<Omit<PlanRecord, 'id' | 'createdAt' | 'updatedAt'>>): PlanRecord {
    this.#update('plans', id, { ...patch, updatedAt: this.now() });
    return this.getPlan(id)!;
  }

  deletePlan(id: string): void {
    this.transaction(() => {
      this.db.prepare('DELETE FROM secrets WHERE owner_kind = ? AND owner_id = ?').run('plan', id);
      // Its alerts go with it (ON DELETE CASCADE): their secret references first.
      this.db.prepare("DELETE FROM secrets WHERE owner_kind = 'alert' AND owner_id IN (SELECT id FROM alerts WHERE plan_id = ?)").run(id);
      this.db.prepare('DELETE FROM plans WHERE id = ?').run(id);
    });
  }

  // ---- tasks ---------------------------------------------------------------------------

  insertTask(t: Pick<TaskRecord, 'id' | 'planId' | 'planName' | 'trigger' | 'status'> & Partial<TaskRecord>): TaskRecord {
    this.#insert('tasks', { queuedAt: this.now(), ...t });
    return this.getTask(t.id)!;
  }

  getTask(id: string): TaskRecord | undefined {
    return fromRow<TaskRecord>(this.db.prepare('SELECT * FROM tasks WHERE id = ?').get(id) as Record<string, unknown>);
  }

  updateTask(id: string, patch: Partial<Omit<TaskRecord, 'id'>>): TaskRecord {
    this.#update('tasks', id, patch);
    return this.getTask(id)!;
  }

  listTasks(filter: { planId?: string; status?: TaskStatus; limit?: number; since?: string } = {}): TaskRecord[] {
    return (
      this.db
        .prepare(
          `SELECT * FROM tasks WHERE (@plan IS NULL OR plan_id = @plan) AND (@status IS NULL OR status = @status)
             AND (@since IS NULL OR COALESCE(ended_at, '9999') >= @since) ORDER BY queued_at DESC, id DESC LIMIT @limit`,
        )
        .all({ plan: filter.planId ?? null, status: filter.status ?? null, limit: filter.limit ?? 1000, since: filter.since ?? null }) as Record<string, unknown>[]
    ).map((r) => fromRow<TaskRecord>(r)!);
  }

  /** The newest task of a plan that has ended (succeeded, failed or interrupted). */
  lastEndedTask(planId: string): TaskRecord | undefined {
    return fromRow<TaskRecord>(
      this.db
        .prepare("SELECT * FROM tasks WHERE plan_id = ? AND status IN ('succeeded', 'failed', 'interrupted') ORDER BY queued_at DESC, id DESC LIMIT 1")
        .get(planId) as Record<string, unknown> | undefined,
    );
  }

  // ---- backups -------------------------------------------------------------------------

  /** Inserts a backup and its primary copy (ready, or missing as the backup is), in its pool. */
  insertBackup(b: BackupRecord): BackupRecord {
    this.transaction(() => {
      this.#insert('backups', { ...b });
      this.upsertCopy({ backupId: b.id, poolId: b.poolId, role: 'primary', status: b.status === 'missing' ? 'missing' : 'ready', storedBytes: b.storedBytes, checkedAt: b.endedAt });
    });
    return this.getBackup(b.id)!;
  }

  getBackup(id: string): BackupRecord | undefined {
    return fromRow<BackupRecord>(this.db.prepare('SELECT * FROM backups WHERE id = ?').get(id) as Record<string, unknown>);
  }

  /**
   * Backups, newest first. `poolId`: those with a copy in that pool (of any status, or of
   * `copyStatus` when given).
   */
  listBackups(filter: { planId?: string; poolId?: string; copyStatus?: CopyStatus[] } = {}): BackupRecord[] {
    const statuses = filter.copyStatus ? JSON.stringify(filter.copyStatus) : null;
    return (
      this.db
        .prepare(
          `SELECT * FROM backups WHERE (@plan IS NULL OR plan_id = @plan)
             AND (@pool IS NULL OR id IN (SELECT backup_id FROM backup_copies WHERE pool_id = @pool AND (@st IS NULL OR status IN (SELECT value FROM json_each(@st)))))
           ORDER BY ended_at DESC, id DESC`,
        )
        .all({ plan: filter.planId ?? null, pool: filter.poolId ?? null, st: statuses }) as Record<string, unknown>[]
    ).map((r) => fromRow<BackupRecord>(r)!);
  }

  /**
   * A page of backups, newest first, without manifests, read lazily (a list may stream 100k
   * rows). Columns are selected under their record names, so rows need no conversion.
   */
  backupPage(q: ListQuery): IterableIterator<BackupListRow> {
    const { where, params } = listWhere(q, BACKUP_COLS);
    const page = pageSql(q, params);
    const rows = this.db
      .prepare(
        `SELECT t.id, t.plan_id AS planId, t.plan_name AS planName, t.task_id AS taskId, t.pool_id AS poolId, COALESCE(p.name, t.pool_id) AS poolName, t.status,
                t.source_kind AS sourceKind, t.backup_type AS backupType, t.parent_id AS parentId, t.raw_bytes AS rawBytes, t.stored_bytes AS storedBytes,
                t.started_at AS startedAt, t.ended_at AS endedAt,
                (SELECT json_group_array(json_object('pool', x.pool, 'role', x.role, 'status', x.status)) FROM
                   (SELECT COALESCE(cp.name, c.pool_id) AS pool, c.role, c.status FROM backup_copies c LEFT JOIN pools cp ON cp.id = c.pool_id
                    WHERE c.backup_id = t.id ORDER BY CASE c.role WHEN 'primary' THEN 0 ELSE 1 END, cp.created_at, c.pool_id) x) AS copies
         FROM backups t LEFT JOIN pools p ON p.id = t.pool_id ${where} ORDER BY t.ended_at DESC, t.id DESC ${page}`,
      )
      .iterate(params) as IterableIterator<Omit<BackupListRow, 'copies'> & { copies: string }>;
    return (function* () {
      for (const r of rows) yield { ...r, copies: JSON.parse(r.copies) as BackupListRow['copies'] };
    })();
  }

  /**
   * Counts and sizes of the backups that match, grouped (day: the local calendar day of the
   * end). Reads only the covering index backups_sizes, never the rows with their manifests.
   */
  groupBackups(q: ListQuery, by: BackupGroupBy): BackupGroup[] {
    const { where, params } = listWhere({ ...q, before: undefined }, BACKUP_COLS);
    const groups = byDay(by === 'day' ? 't.ended_at' : undefined, (day) => {
      const key = { plan: 't.plan_id', pool: 't.pool_id', type: "t.source_kind || ' ' || t.backup_type", day }[by];
      return this.db
        .prepare(
          `SELECT ${key} AS key, COUNT(*) AS count, COALESCE(SUM(t.raw_bytes), 0) AS rawBytes, COALESCE(SUM(t.stored_bytes), 0) AS storedBytes,
                  MIN(t.ended_at) AS oldest, MAX(t.ended_at) AS newest
           FROM backups t INDEXED BY backups_sizes ${where} GROUP BY 1`,
        )
        .all(params) as BackupGroup[];
    });
    const name =
      by === 'plan'
        ? (id: string) => (this.db.prepare('SELECT name FROM plans WHERE id = ? UNION ALL SELECT plan_name FROM backups WHERE plan_id = ? LIMIT 1').pluck().get(id, id) as string | undefined) ?? id
        : by === 'pool'
          ? (id: string) => this.getPool(id)?.name ?? id
          : (k: string) => k;
    const named = groups.map((g) => ({ ...g, key: name(g.key) }));
    return named.sort((a, b) => (by === 'day' ? (a.key < b.key ? 1 : -1) : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Counts and sizes of the tasks that match, grouped like groupBackups (day: the local day of
   * the queue time), or by status or trigger; oldest/newest are queue times.
   */
  groupTasks(q: ListQuery, by: TaskGroupBy): BackupGroup[] {
    const { where, params } = listWhere({ ...q, before: undefined }, TASK_COLS);
    const groups = byDay(by === 'day' ? 't.queued_at' : undefined, (day) => {
      const key = { plan: 't.plan_id', pool: "COALESCE(t.pool_id, '-')", type: "COALESCE(t.backup_type, '-')", day, status: 't.status', trigger: 't.trigger' }[by];
      return this.db
        .prepare(
          `SELECT ${key} AS key, COUNT(*) AS count, COALESCE(SUM(t.raw_bytes), 0) AS rawBytes, COALESCE(SUM(t.stored_bytes), 0) AS storedBytes,
                  MIN(t.queued_at) AS oldest, MAX(t.queued_at) AS newest
           FROM tasks t ${where} GROUP BY 1`,
        )
        .all(params) as BackupGroup[];
    });
    return this.#nameGroups(groups, by === 'plan' || by === 'pool' ? by : by === 'day' ? 'day' : 'other');
  }

  /**
   * Counts and sizes (bytes restored) of the restores that match, grouped by the restored
   * backup's plan, pool or type, by the local day they started, or by status.
   */
  groupRestores(q: ListQuery, by: RestoreGroupBy): BackupGroup[] {
    const { where, params } = listWhere({ ...q, before: undefined }, RESTORE_COLS);
    const groups = byDay(by === 'day' ? 't.started_at' : undefined, (day) => {
      const key = { plan: 't.plan_id', pool: "COALESCE(b.pool_id, '-')", type: "COALESCE(b.source_kind || ' ' || b.backup_type, '-')", day, status: 't.status' }[by];
      return this.db
        .prepare(
          `SELECT ${key} AS key, COUNT(*) AS count, COALESCE(SUM(t.bytes), 0) AS rawBytes, COALESCE(SUM(t.bytes), 0) AS storedBytes,
                  MIN(t.started_at) AS oldest, MAX(t.started_at) AS newest
           FROM restores t LEFT JOIN backups b ON b.id = t.backup_id ${where} GROUP BY 1`,
        )
        .all(params) as BackupGroup[];
    });
    return this.#nameGroups(groups, by === 'plan' || by === 'pool' ? by : by === 'day' ? 'day' : 'other');
  }

  /** Plan and pool ids of groups as names; newest day first, else by key. */
  #nameGroups(groups: BackupGroup[], by: 'plan' | 'pool' | 'day' | 'other'): BackupGroup[] {
    const name =
      by === 'plan'
        ? (id: string) =>
            (this.db.prepare('SELECT name FROM plans WHERE id = ? UNION ALL SELECT plan_name FROM backups WHERE plan_id = ? UNION ALL SELECT plan_name FROM tasks WHERE plan_id = ? LIMIT 1').pluck().get(id, id, id) as string | undefined) ?? id
        : by === 'pool'
          ? (id: string) => this.getPool(id)?.name ?? id
          : (k: string) => k;
    const named = groups.map((g) => ({ ...g, key: name(g.key) }));
    return named.sort((a, b) => (by === 'day' ? (a.key < b.key ? 1 : -1) : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** A page of tasks, newest first (by queue time), read lazily. */
  taskPage(q: ListQuery): IterableIterator<TaskRecord> {
    const { where, params } = listWhere(q, TASK_COLS);
    const page = pageSql(q, params);
    const rows = this.db.prepare(`SELECT t.* FROM tasks t ${where} ORDER BY t.queued_at DESC, t.id DESC ${page}`).iterate(params) as IterableIterator<Record<string, unknown>>;
    return (function* () {
      for (const r of rows) yield fromRow<TaskRecord>(r)!;
    })();
  }

  /** A page of restores, newest first; pool and type filters are the restored backup's. */
  restorePage(q: ListQuery): IterableIterator<RestoreRecord & { poolId: string | null; backupType: string | null }> {
    const { where, params } = listWhere(q, RESTORE_COLS);
    const page = pageSql(q, params);
    const rows = this.db
      .prepare(`SELECT t.*, b.pool_id, b.backup_type FROM restores t LEFT JOIN backups b ON b.id = t.backup_id ${where} ORDER BY t.started_at DESC, t.id DESC ${page}`)
      .iterate(params) as IterableIterator<Record<string, unknown>>;
    return (function* () {
      for (const r of rows) yield fromRow<RestoreRecord & { poolId: string | null; backupType: string | null }>(r)!;
    })();
  }

  /** The id of a plan gone from the plans table that backups or tasks still name (by id or name). */
  planIdInHistory(ref: string): string | undefined {
    return this.db
      .prepare('SELECT plan_id FROM backups WHERE plan_id = @r OR plan_name = @r UNION ALL SELECT plan_id FROM tasks WHERE plan_id = @r OR plan_name = @r LIMIT 1')
      .pluck()
      .get({ r: ref }) as string | undefined;
  }

  updateBackup(id: string, patch: Partial<Omit<BackupRecord, 'id'>>): void {
    this.#update('backups', id, patch);
  }

  /** Deletes a backup with every copy row it has. */
  deleteBackup(id: string): void {
    this.transaction(() => {
      this.db.prepare('DELETE FROM backup_copies WHERE backup_id = ?').run(id);
      this.db.prepare('DELETE FROM backups WHERE id = ?').run(id);
    });
  }

  // ---- metrics -------------------------------------------------------------------------

  /**
   * One row per plan and per pool for the Prometheus metrics: index lookups per plan (the
   * newest ended and succeeded task by tasks_plan, restores by restores_plan) and one
   * grouping of ready copies per pool (backup_copies_pool); no manifest is read.
   */
  metricsRows(): { plans: PlanMetricsRow[]; pools: PoolMetricsRow[] } {
    return this.db.transaction(() => {
      const plans = (
        this.db
          .prepare(
            `SELECT p.name, p.status, p.source_kind AS sourceKind, p.backup_type AS backupType, COALESCE(pl.name, p.pool_id) AS pool,
                EXISTS (SELECT 1 FROM tasks t WHERE t.plan_id = p.id AND t.status = 'running') AS running,
                (SELECT json_object('status', t.status, 'startedAt', t.started_at, 'endedAt', t.ended_at) FROM tasks t
                  WHERE t.plan_id = p.id AND t.status IN ('succeeded', 'failed', 'interrupted') ORDER BY t.queued_at DESC, t.id DESC LIMIT 1) AS lastRun,
                (SELECT json_object('startedAt', t.started_at, 'endedAt', t.ended_at, 'rawBytes', t.raw_bytes, 'storedBytes', t.stored_bytes) FROM tasks t
                  WHERE t.plan_id = p.id AND t.status = 'succeeded' ORDER BY t.queued_at DESC, t.id DESC LIMIT 1) AS lastSuccess,
                (SELECT MAX(r.ended_at) FROM restores r WHERE r.plan_id = p.id AND r.status = 'succeeded') AS lastRestoreAt,
                (SELECT json_object('cpuSeconds', t.cpu_seconds, 'rssPeakBytes', t.rss_peak_bytes, 'bytesIn', t.bytes_in, 'bytesOut', t.bytes_out) FROM tasks t
                  WHERE t.plan_id = p.id AND t.status IN ('succeeded', 'failed', 'interrupted') AND t.cpu_seconds IS NOT NULL ORDER BY t.queued_at DESC, t.id DESC LIMIT 1) AS lastUsage
             FROM plans p LEFT JOIN pools pl ON pl.id = p.pool_id ORDER BY p.name`,
          )
          .all() as (Omit<PlanMetricsRow, 'running' | 'lastRun' | 'lastSuccess' | 'lastUsage'> & { running: number; lastRun: string | null; lastSuccess: string | null; lastUsage: string | null })[]
      ).map((r) => ({
        ...r,
        running: r.running === 1,
        lastRun: r.lastRun === null ? null : (JSON.parse(r.lastRun) as PlanMetricsRow['lastRun']),
        lastSuccess: r.lastSuccess === null ? null : (JSON.parse(r.lastSuccess) as PlanMetricsRow['lastSuccess']),
        lastUsage: r.lastUsage === null ? null : (JSON.parse(r.lastUsage) as PlanMetricsRow['lastUsage']),
      }));
      const pools = this.db
        .prepare(
          `SELECT p.name, p.type, p.status, p.checked_at AS checkedAt, p.orphan_uploads AS orphanUploads, p.orphans_checked_at AS orphansCheckedAt, COUNT(c.backup_id) AS backups,
              COALESCE(SUM(b.raw_bytes), 0) AS rawBytes, COALESCE(SUM(COALESCE(c.stored_bytes, b.stored_bytes)), 0) AS storedBytes
           FROM pools p LEFT JOIN backup_copies c ON c.pool_id = p.id AND c.status = 'ready' LEFT JOIN backups b ON b.id = c.backup_id
           GROUP BY p.id ORDER BY p.name`,
        )
        .all() as PoolMetricsRow[];
      return { plans, pools };
    })();
  }

  // ---- monitoring samples ----------------------------------------------------------------

  insertSample(x: SampleRecord): void {
    this.db
      .prepare('INSERT INTO task_samples (task_id, t, span_ms, cpu_pct, rss_bytes, bytes_in, bytes_out, stages) VALUES (@taskId, @t, @spanMs, @cpuPct, @rssBytes, @bytesIn, @bytesOut, @stages)')
      .run({ taskId: x.taskId, t: x.t, spanMs: x.spanMs, cpuPct: x.cpuPct, rssBytes: x.rssBytes, bytesIn: x.bytesIn, bytesOut: x.bytesOut, stages: x.stages ? JSON.stringify(x.stages) : null });
  }

  /** The samples of tasks/restores, oldest first (index task_samples_task). */
  listSamples(ids: readonly string[], since = 0): SampleRecord[] {
    if (!ids.length) return [];
    const rows = this.db
      .prepare(
        `SELECT task_id AS taskId, t, span_ms AS spanMs, cpu_pct AS cpuPct, rss_bytes AS rssBytes, bytes_in AS bytesIn, bytes_out AS bytesOut, stages
         FROM task_samples WHERE task_id IN (SELECT value FROM json_each(@ids)) AND t >= @since ORDER BY t, task_id`,
      )
      .all({ ids: JSON.stringify(ids), since }) as (Omit<SampleRecord, 'stages'> & { stages: string | null })[];
    return rows.map(({ stages, ...x }) => (stages === null ? x : { ...x, stages: decodeStages(stages, x.taskId) }));
  }

  countSamples(taskId?: string): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM task_samples WHERE @id IS NULL OR task_id = @id').get({ id: taskId ?? null }) as { n: number }).n;
  }

  /**
   * Merges samples into buckets of `bucketMs` (per task, by t / bucketMs): the CPU % averaged
   * over the time covered, the peak RSS, the totals in/out (and per stage) of the bucket's last sample, t the
   * last sample's and span_ms their sum. Only rows finer than the bucket are merged. `taskId`:
   * that run's samples; `before`: rows older than this (Unix ms). Returns the rows removed.
   */
  rollUpSamples(o: { bucketMs: number; taskId?: string; before?: number }): number {
    const bucket = Math.max(1, Math.floor(o.bucketMs));
    return this.transaction(() => {
      const params = { bucket, id: o.taskId ?? null, before: o.before ?? null };
      const where = '(@id IS NULL OR task_id = @id) AND (@before IS NULL OR t < @before) AND span_ms < @bucket';
      const groups = this.db
        .prepare(
          `SELECT task_id AS taskId, MAX(t) AS t, SUM(span_ms) AS spanMs,
              CASE WHEN SUM(span_ms) > 0 THEN SUM(cpu_pct * span_ms) / SUM(span_ms) ELSE AVG(cpu_pct) END AS cpuPct,
              MAX(rss_bytes) AS rssBytes, MAX(bytes_in) AS bytesIn, MAX(bytes_out) AS bytesOut, COUNT(*) AS n,
              (SELECT s2.stages FROM task_samples s2 WHERE s2.task_id = task_samples.task_id AND CAST(s2.t / @bucket AS INTEGER) = CAST(task_samples.t / @bucket AS INTEGER) AND s2.stages IS NOT NULL ORDER BY s2.t DESC LIMIT 1) AS stages
           FROM task_samples WHERE ${where} GROUP BY task_id, CAST(t / @bucket AS INTEGER) HAVING COUNT(*) > 1`,
        )
        .all(params) as (Omit<SampleRecord, 'stages'> & { n: number; stages: string | null })[];
      if (!groups.length) return 0;
      const del = this.db.prepare(`DELETE FROM task_samples WHERE ${where} AND task_id = @tid AND CAST(t / @bucket AS INTEGER) = @key`);
      let removed = 0;
      for (const g of groups) {
        removed += del.run({ ...params, tid: g.taskId, key: Math.floor(g.t / bucket) }).changes;
        this.insertSample({ taskId: g.taskId, t: g.t, spanMs: Math.max(bucket, g.spanMs), cpuPct: g.cpuPct, rssBytes: g.rssBytes, bytesIn: g.bytesIn, bytesOut: g.bytesOut, ...(g.stages ? { stages: decodeStages(g.stages, g.taskId) } : {}) });
      }
      return removed - groups.length;
    });
  }

  // ---- backup copies -------------------------------------------------------------------

  /** The copies of a backup: the primary first, then replicas by pool creation. */
  listCopies(backupId: string): CopyRecord[] {
    return (
      this.db
        .prepare(
          `SELECT c.* FROM backup_copies c LEFT JOIN pools p ON p.id = c.pool_id WHERE c.backup_id = ?
           ORDER BY CASE c.role WHEN 'primary' THEN 0 ELSE 1 END, p.created_at, c.pool_id`,
        )
        .all(backupId) as Record<string, unknown>[]
    ).map((r) => fromRow<CopyRecord>(r)!);
  }

  getCopy(backupId: string, poolId: string): CopyRecord | undefined {
    return fromRow<CopyRecord>(this.db.prepare('SELECT * FROM backup_copies WHERE backup_id = ? AND pool_id = ?').get(backupId, poolId) as Record<string, unknown>);
  }

  /** Copies in a pool (of the given statuses), e.g. the failed ones to retry. */
  listCopiesInPool(poolId: string, statuses?: CopyStatus[]): CopyRecord[] {
    return (
      this.db
        .prepare('SELECT * FROM backup_copies WHERE pool_id = @pool AND (@st IS NULL OR status IN (SELECT value FROM json_each(@st))) ORDER BY created_at, backup_id')
        .all({ pool: poolId, st: statuses ? JSON.stringify(statuses) : null }) as Record<string, unknown>[]
    ).map((r) => fromRow<CopyRecord>(r)!);
  }

  /** Copies of the given statuses across all pools (the daemon retries failed ones). */
  listCopiesByStatus(statuses: CopyStatus[]): CopyRecord[] {
    return (
      this.db.prepare('SELECT * FROM backup_copies WHERE status IN (SELECT value FROM json_each(?)) ORDER BY created_at, backup_id').all(JSON.stringify(statuses)) as Record<string, unknown>[]
    ).map((r) => fromRow<CopyRecord>(r)!);
  }

  /** Creates or changes the copy of a backup in a pool; fields not given keep their value (or default). */
  upsertCopy(c: Pick<CopyRecord, 'backupId' | 'poolId' | 'status'> & Partial<Omit<CopyRecord, 'backupId' | 'poolId' | 'status' | 'createdAt' | 'updatedAt'>>): CopyRecord {
    const now = this.now();
    const cur = this.getCopy(c.backupId, c.poolId);
    if (!cur) {
      this.db
        .prepare(
          `INSERT INTO backup_copies (backup_id, pool_id, role, status, stored_bytes, checked_at, error, attempts, created_at, updated_at)
           VALUES (@backupId, @poolId, @role, @status, @storedBytes, @checkedAt, @error, @attempts, @now, @now)`,
        )
        .run({ backupId: c.backupId, poolId: c.poolId, role: c.role ?? 'replica', status: c.status, storedBytes: c.storedBytes ?? null, checkedAt: c.checkedAt ?? null, error: c.error ?? '', attempts: c.attempts ?? 0, now });
    } else {
      const cols = toColumns({ ...c, backupId: undefined, poolId: undefined, updatedAt: now });
      const names = Object.keys(cols);
      this.db.prepare(`UPDATE backup_copies SET ${names.map((n) => `${n} = @${n}`).join(', ')} WHERE backup_id = @__b AND pool_id = @__p`).run({ ...cols, __b: c.backupId, __p: c.poolId });
    }
    return this.getCopy(c.backupId, c.poolId)!;
  }

  /**
   * Removes one copy row; when it was the backup's last, the backup leaves the catalog too.
   * Returns true when the backup is gone.
   */
  deleteCopy(backupId: string, poolId: string): boolean {
    return this.transaction(() => {
      this.db.prepare('DELETE FROM backup_copies WHERE backup_id = ? AND pool_id = ?').run(backupId, poolId);
      const left = (this.db.prepare('SELECT COUNT(*) AS n FROM backup_copies WHERE backup_id = ?').get(backupId) as { n: number }).n;
      if (left === 0) this.db.prepare('DELETE FROM backups WHERE id = ?').run(backupId);
      return left === 0;
    });
  }

  /** Backups known to be in a pool by any copy row (pool unbind refuses while there are any). */
  countCopiesInPool(poolId: string): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM backup_copies WHERE pool_id = ?').get(poolId) as { n: number }).n;
  }

  // ---- restores ------------------------------------------------------------------------

  insertRestore(r: Pick<RestoreRecord, 'id' | 'backupId' | 'planId' | 'status' | 'target' | 'options'> & Partial<RestoreRecord>): RestoreRecord {
    this.#insert('restores', { startedAt: this.now(), ...r });
    return this.getRestore(r.id)!;
  }

  getRestore(id: string): RestoreRecord | undefined {
    return fromRow<RestoreRecord>(this.db.prepare('SELECT * FROM restores WHERE id = ?').get(id) as Record<string, unknown>);
  }

  updateRestore(id: string, patch: Partial<Omit<RestoreRecord, 'id'>>): void {
    this.#update('restores', id, patch);
  }

  listRestores(filter: { backupId?: string; status?: RestoreStatus; planId?: string; since?: string } = {}): RestoreRecord[] {
    return (
      this.db
        .prepare(
          `SELECT * FROM restores WHERE (@b IS NULL OR backup_id = @b) AND (@s IS NULL OR status = @s) AND (@p IS NULL OR plan_id = @p)
             AND (@since IS NULL OR COALESCE(ended_at, '9999') >= @since) ORDER BY started_at DESC, id DESC`,
        )
        .all({ b: filter.backupId ?? null, s: filter.status ?? null, p: filter.planId ?? null, since: filter.since ?? null }) as Record<string, unknown>[]
    ).map((r) => fromRow<RestoreRecord>(r)!);
  }

  // ---- locks ---------------------------------------------------------------------------

  getLock(name: string): LockRecord | undefined {
    return fromRow<LockRecord>(this.db.prepare('SELECT * FROM locks WHERE name = ?').get(name) as Record<string, unknown>);
  }

  /**
   * Takes a lock unless a live holder has it. `isStale(lock)` decides whether an existing
   * holder is dead; a stale lock is taken over and returned as `takenOver`.
   */
  acquireLock(
    l: Omit<LockRecord, 'acquiredAt' | 'heartbeatAt' | 'expiresAt'> & { leaseMs: number },
    isStale: (held: LockRecord) => boolean,
  ): { ok: true; lock: LockRecord; takenOver?: LockRecord } | { ok: false; holder: LockRecord } {
    return this.transaction(() => {
      const held = this.getLock(l.name);
      if (held && !isStale(held)) return { ok: false as const, holder: held };
      const now = this.#clock();
      const at = now.toISOString();
      this.db
        .prepare('INSERT OR REPLACE INTO locks (name, pid, host, owner, acquired_at, heartbeat_at, expires_at, pid_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(l.name, l.pid, l.host, l.owner, at, at, new Date(now.getTime() + l.leaseMs).toISOString(), l.pidNs);
      return { ok: true as const, lock: this.getLock(l.name)!, ...(held ? { takenOver: held } : {}) };
    });
  }

  /** Renews the lease of a lock this holder still has; false when the lock is gone or another's. */
  renewLock(name: string, pid: number, host: string, acquiredAt: string, leaseMs: number): boolean {
    const now = this.#clock();
    return (
      this.db
        .prepare('UPDATE locks SET heartbeat_at = ?, expires_at = ? WHERE name = ? AND pid = ? AND host = ? AND acquired_at = ?')
        .run(now.toISOString(), new Date(now.getTime() + leaseMs).toISOString(), name, pid, host, acquiredAt).changes === 1
    );
  }

  releaseLock(name: string, pid: number, host: string, acquiredAt: string): void {
    this.db.prepare('DELETE FROM locks WHERE name = ? AND pid = ? AND host = ? AND acquired_at = ?').run(name, pid, host, acquiredAt);
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

  // ---- alerts --------------------------------------------------------------------------

  #alert(r: Record<string, unknown> | undefined): AlertRecord | undefined {
    if (!r) return undefined;
    return {
      id: String(r.id),
      name: String(r.name),
      planId: (r.plan_id as string | null) ?? null,
      allPlans: r.all_plans === 1,
      rules: JSON.parse(String(r.rules)) as string[],
      targets: JSON.parse(String(r.targets)) as string[],
      remark: String(r.remark),
      createdAt: String(r.created_at),
      updatedAt: String(r.updated_at),
    };
  }

  /** Inserts an alert; a taken name is a UNIQUE violation (the caller maps it). */
  insertAlert(a: Omit<AlertRecord, 'createdAt' | 'updatedAt'>): AlertRecord {
    const now = this.now();
    this.db
      .prepare('INSERT INTO alerts (id, name, plan_id, all_plans, rules, targets, remark, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(a.id, a.name, a.planId, a.allPlans ? 1 : 0, JSON.stringify(a.rules), JSON.stringify(a.targets), a.remark, now, now);
    return this.getAlert(a.id)!;
  }

  getAlert(id: string): AlertRecord | undefined {
    return this.#alert(this.db.prepare('SELECT * FROM alerts WHERE id = ?').get(id) as Record<string, unknown> | undefined);
  }

  findAlert(idOrName: string): AlertRecord | undefined {
    return this.#alert(this.db.prepare('SELECT * FROM alerts WHERE id = ? UNION ALL SELECT * FROM alerts WHERE name = ? LIMIT 1').get(idOrName, idOrName) as Record<string, unknown> | undefined);
  }

  listAlerts(): AlertRecord[] {
    return (this.db.prepare('SELECT * FROM alerts ORDER BY name').all() as Record<string, unknown>[]).map((r) => this.#alert(r)!);
  }

  /** The alerts that watch a plan: its own and the --all-plans ones. */
  alertsForPlan(planId: string): AlertRecord[] {
    return (this.db.prepare('SELECT * FROM alerts WHERE plan_id = ? OR all_plans = 1 ORDER BY name').all(planId) as Record<string, unknown>[]).map((r) => this.#alert(r)!);
  }

  updateAlert(id: string, a: Pick<AlertRecord, 'name' | 'planId' | 'allPlans' | 'rules' | 'targets' | 'remark'>): AlertRecord {
    this.db
      .prepare('UPDATE alerts SET name = ?, plan_id = ?, all_plans = ?, rules = ?, targets = ?, remark = ?, updated_at = ? WHERE id = ?')
      .run(a.name, a.planId, a.allPlans ? 1 : 0, JSON.stringify(a.rules), JSON.stringify(a.targets), a.remark, this.now(), id);
    return this.getAlert(id)!;
  }

  deleteAlert(id: string): void {
    this.transaction(() => {
      this.db.prepare('DELETE FROM secrets WHERE owner_kind = ? AND owner_id = ?').run('alert', id);
      this.db.prepare('DELETE FROM alerts WHERE id = ?').run(id);
    });
  }

  alertStates(alertId: string): AlertStateRecord[] {
    return (
      this.db.prepare('SELECT alert_id, plan_id, state, reason, since, updated_at FROM alert_states WHERE alert_id = ? ORDER BY plan_id').all(alertId) as Record<string, unknown>[]
    ).map((r) => fromRow<AlertStateRecord>(r)!);
  }

  getAlertState(alertId: string, planId: string): AlertStateRecord | undefined {
    return fromRow<AlertStateRecord>(
      this.db.prepare('SELECT alert_id, plan_id, state, reason, since, updated_at FROM alert_states WHERE alert_id = ? AND plan_id = ?').get(alertId, planId) as Record<string, unknown> | undefined,
    );
  }

  setAlertState(s: Pick<AlertStateRecord, 'alertId' | 'planId' | 'state' | 'reason' | 'since'>): void {
    this.db
      .prepare(
        `INSERT INTO alert_states (alert_id, plan_id, state, reason, since, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (alert_id, plan_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, since = excluded.since, updated_at = excluded.updated_at`,
      )
      .run(s.alertId, s.planId, s.state, s.reason, s.since, this.now());
  }

  /** Forgets every state of an alert (its plan or rules changed). */
  clearAlertStates(alertId: string): void {
    this.db.prepare('DELETE FROM alert_states WHERE alert_id = ?').run(alertId);
  }

  /** The newest alert.* events of an alert: on the alert itself, or on plans naming it ("alert NAME ..."). */
  alertEvents(alertId: string, name: string, limit = 10): EventRecord[] {
    const prefix = `alert ${name} `;
    const prefix2 = `alert ${name}:`;
    return this.db
      .prepare(
        `SELECT id, resource_kind AS resourceKind, resource_id AS resourceId, type, level, message, count, first_at AS firstAt, last_at AS lastAt
         FROM events WHERE type LIKE 'alert.%' AND ((resource_kind = 'alert' AND resource_id = @id)
           OR (resource_kind = 'plan' AND (substr(message, 1, length(@p1)) = @p1 OR substr(message, 1, length(@p2)) = @p2)))
         ORDER BY last_at DESC, id DESC LIMIT @limit`,
      )
      .all({ id: alertId, p1: prefix, p2: prefix2, limit }) as EventRecord[];
  }

  /** The newest succeeded task of a plan. */
  lastSucceededTask(planId: string): TaskRecord | undefined {
    return fromRow<TaskRecord>(
      this.db.prepare("SELECT * FROM tasks WHERE plan_id = ? AND status = 'succeeded' ORDER BY queued_at DESC, id DESC LIMIT 1").get(planId) as Record<string, unknown> | undefined,
    );
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
