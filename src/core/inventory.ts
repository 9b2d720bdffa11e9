// The inventory lists at scale: `backup list`, `task list`, `restore list` with filters,
// paging and grouping, answered by indexed SQL (store/catalog.ts) and read lazily, so a
// catalog of 100k backups lists its first page in milliseconds and --json streams every row.
// Light on purpose: it imports no engine and no pool driver (start-up of a list).
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import { DESCRIPTORS } from '../engines/registry.js';
import type { BackupGroup, BackupGroupBy, BackupListRow, Catalog, ListQuery, RestoreGroupBy, RestoreRecord, TaskGroupBy, TaskRecord } from '../store/catalog.js';
import { parseTime } from './schedule.js';
import { parseDuration } from './durations.js';

/** What a user gives to every inventory list (flags as given; all optional). */
export interface ListFilterInput {
  plan?: string;
  pool?: string;
  type?: string;
  status?: string;
  since?: string;
  until?: string;
  before?: string;
  offset?: number;
  limit?: number;
}

export const BACKUP_STATUSES = ['available', 'deleting', 'missing'] as const;
export const TASK_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'interrupted'] as const;
export const RESTORE_STATUSES = ['running', 'succeeded', 'failed', 'interrupted'] as const;
export const GROUP_BY: readonly BackupGroupBy[] = ['plan', 'pool', 'type', 'day'];
export const TASK_GROUP_BY: readonly TaskGroupBy[] = [...GROUP_BY, 'status', 'trigger'];
export const RESTORE_GROUP_BY: readonly RestoreGroupBy[] = [...GROUP_BY, 'status'];

/** The backup types some engine declares. */
export function knownBackupTypes(): string[] {
  return [...new Set(DESCRIPTORS.flatMap((d) => Object.keys(d.types)))].sort();
}

/**
 * A point in time from --since/--until: an age ("24h", "7d": that long before now) or a time
 * (ISO 8601, or "YYYY-MM-DD HH:MM" local); a bare date "YYYY-MM-DD" is that day's local start.
 */
export function parsePointInTime(s: string, flag: string, now: Date): Date {
  const t = s.trim();
  if (/^\d+(\.\d+)?\s*[a-zA-Z]+$/.test(t)) return new Date(now.getTime() - parseDuration(t, flag));
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t);
  if (day) {
    const d = new Date(+day[1], +day[2] - 1, +day[3]);
    if (!Number.isNaN(d.getTime()) && d.getMonth() === +day[2] - 1) return d;
  }
  try {
    return parseTime(t, flag);
  } catch {
    throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(s)} is neither an age nor a time`, {
      hint: `e.g. ${flag} 24h, ${flag} 7d, ${flag} 2026-12-01 or ${flag} "2026-12-01 02:30"`,
    });
  }
}

function oneOfOrThrow(v: string, flag: string, allowed: readonly string[]): string {
  if (!allowed.includes(v)) throw new DbsError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(v)} is not one of ${allowed.join(', ')}`, { hint: `e.g. ${flag} ${allowed[0]}` });
  return v;
}

/** Checks every flag and resolves names to ids; nothing is read before all of them are valid. */
export function parseListQuery(
  i: ListFilterInput,
  catalog: Catalog,
  now: Date,
  o: { statuses: readonly string[]; beforeAt: (id: string) => string | undefined; what: string },
): ListQuery {
  const q: ListQuery = {};
  if (i.status !== undefined) q.status = oneOfOrThrow(i.status, '--status', o.statuses);
  if (i.type !== undefined) q.backupType = oneOfOrThrow(i.type, '--type', knownBackupTypes());
  if (i.since !== undefined) q.since = parsePointInTime(i.since, '--since', now).toISOString();
  if (i.until !== undefined) q.until = parsePointInTime(i.until, '--until', now).toISOString();
  if (q.since && q.until && q.since > q.until) {
    throw new DbsError('INVALID_ARGUMENT', `--since ${JSON.stringify(i.since)} is after --until ${JSON.stringify(i.until)}`, { hint: 'give the older time to --since' });
  }
  if (i.before !== undefined && i.offset !== undefined) throw new DbsError('USAGE', '--before and --offset are exclusive', { hint: 'page with one of them: --before ID (the last id of the page) is stable while rows are added' });
  if (i.offset !== undefined) q.offset = i.offset;
  if (i.limit !== undefined) q.limit = i.limit;
  if (i.plan !== undefined) {
    // A deleted plan's backups and tasks keep its id and name: those still filter.
    const id = catalog.findPlan(i.plan)?.id ?? catalog.planIdInHistory(i.plan);
    if (!id) throw new DbsError('PLAN_NOT_FOUND', `plan ${JSON.stringify(i.plan)} not found`, { hint: 'see the plans with: dbs plan list' });
    q.planId = id;
  }
  if (i.pool !== undefined) {
    const p = catalog.findPool(i.pool);
    if (!p) throw new DbsError('POOL_NOT_FOUND', `pool ${JSON.stringify(i.pool)} not found`, { hint: 'see the bound pools with: dbs pool list' });
    q.poolId = p.id;
  }
  if (i.before !== undefined) {
    const at = o.beforeAt(i.before);
    if (at === undefined) throw new DbsError('NOT_FOUND', `--before ${JSON.stringify(i.before)}: no such ${o.what}`, { hint: `give the id of the last ${o.what} of the previous page` });
    q.before = { at, id: i.before };
  }
  return q;
}

/** A page of a list: the rows (lazy); once they are read, whether more rows follow the page. */
export interface ListPage<T> {
  rows: Iterable<T>;
  more(): boolean;
}

/** Reads one row past the limit (instead of counting every match) to know whether more follow. */
function paged<R, T>(q: ListQuery, read: (q: ListQuery) => Iterable<R>, map: (r: R) => T): ListPage<T> {
  const limit = q.limit;
  let more = false;
  const rows = read(limit === undefined ? q : { ...q, limit: limit + 1 });
  return {
    more: () => more,
    rows: (function* () {
      let n = 0;
      for (const r of rows) {
        if (limit !== undefined && n === limit) {
          more = true;
          break;
        }
        n++;
        yield map(r);
      }
    })(),
  };
}

export type BackupListItem = BackupListRow & { ratio: number | null };

function backupQuery(i: ListFilterInput, catalog: Catalog, now: Date): ListQuery {
  return parseListQuery(i, catalog, now, { statuses: BACKUP_STATUSES, what: 'backup', beforeAt: (id) => catalog.getBackup(id)?.endedAt });
}

export function runBackupPage(i: ListFilterInput, ctx: Context): ListPage<BackupListItem> {
  const catalog = ctx.catalog();
  const q = backupQuery(i, catalog, ctx.clock());
  return paged(q, (x) => catalog.backupPage(x), (b) => {
    const item: BackupListItem = b as BackupListItem;
    item.ratio = b.rawBytes ? Math.round((b.storedBytes / b.rawBytes) * 1000) / 1000 : null;
    return item;
  });
}

function groupByOrThrow<T extends string>(i: ListFilterInput & { groupBy: string }, allowed: readonly T[], what: string): T {
  const by = oneOfOrThrow(i.groupBy, '--group-by', allowed) as T;
  if (i.before !== undefined || i.offset !== undefined || i.limit !== undefined) {
    throw new DbsError('USAGE', '--group-by cannot be combined with --before, --offset or --limit', { hint: `a grouping sums every ${what} that matches the filters` });
  }
  return by;
}

export function runBackupGroups(i: ListFilterInput & { groupBy: string }, ctx: Context): { groupBy: BackupGroupBy; groups: BackupGroup[] } {
  const by = groupByOrThrow(i, GROUP_BY, 'backup');
  const catalog = ctx.catalog();
  return { groupBy: by, groups: catalog.groupBackups(backupQuery(i, catalog, ctx.clock()), by) };
}

export interface TaskListItem extends TaskRecord {
  durationMs: number | null;
  ratio: number | null;
  /** The backup id, or the error code, or the status while it runs. */
  result: string;
}

export function taskItem(t: TaskRecord): TaskListItem {
  return {
    ...t,
    durationMs: t.startedAt && t.endedAt ? new Date(t.endedAt).getTime() - new Date(t.startedAt).getTime() : null,
    ratio: t.rawBytes && t.storedBytes !== null ? Math.round((t.storedBytes / t.rawBytes) * 1000) / 1000 : null,
    result: t.backupId ?? t.errorCode ?? t.status,
  };
}

export function runTaskPage(i: ListFilterInput, ctx: Context): ListPage<TaskListItem> {
  const catalog = ctx.catalog();
  const q = parseListQuery(i, catalog, ctx.clock(), { statuses: TASK_STATUSES, what: 'task', beforeAt: (id) => catalog.getTask(id)?.queuedAt });
  return paged(q, (x) => catalog.taskPage(x), taskItem);
}

/** Counts and sizes of the tasks that match, per plan, pool, type, day, status or trigger. */
export function runTaskGroups(i: ListFilterInput & { groupBy: string }, ctx: Context): { groupBy: TaskGroupBy; groups: BackupGroup[] } {
  const by = groupByOrThrow(i, TASK_GROUP_BY, 'task');
  const catalog = ctx.catalog();
  const q = parseListQuery(i, catalog, ctx.clock(), { statuses: TASK_STATUSES, what: 'task', beforeAt: () => undefined });
  return { groupBy: by, groups: catalog.groupTasks(q, by) };
}

/** Counts and bytes restored of the restores that match, per plan, pool, type, day or status. */
export interface RestoreGroup {
  key: string;
  count: number;
  /** Bytes restored (read from the pool). */
  bytes: number;
  oldest: string;
  newest: string;
}

export function runRestoreGroups(i: ListFilterInput & { groupBy: string; backup?: string }, ctx: Context): { groupBy: RestoreGroupBy; groups: RestoreGroup[] } {
  const by = groupByOrThrow(i, RESTORE_GROUP_BY, 'restore');
  const catalog = ctx.catalog();
  const q = parseListQuery(i, catalog, ctx.clock(), { statuses: RESTORE_STATUSES, what: 'restore', beforeAt: () => undefined });
  if (i.backup !== undefined) q.backupId = i.backup;
  return { groupBy: by, groups: catalog.groupRestores(q, by).map((g) => ({ key: g.key, count: g.count, bytes: g.rawBytes, oldest: g.oldest, newest: g.newest })) };
}

export type RestoreListItem = RestoreRecord & { poolId: string | null; backupType: string | null; durationMs: number | null };

export function runRestorePage(i: ListFilterInput & { backup?: string }, ctx: Context): ListPage<RestoreListItem> {
  const catalog = ctx.catalog();
  const q = parseListQuery(i, catalog, ctx.clock(), { statuses: RESTORE_STATUSES, what: 'restore', beforeAt: (id) => catalog.getRestore(id)?.startedAt });
  if (i.backup !== undefined) q.backupId = i.backup;
  return paged(q, (x) => catalog.restorePage(x), (r) => ({ ...r, durationMs: r.endedAt ? new Date(r.endedAt).getTime() - new Date(r.startedAt).getTime() : null }));
}

/** One execution of a plan as `plan history` shows it. */
export interface PlanHistoryItem {
  task: string;
  /** When it was asked for (queued), started and ended. */
  queuedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  durationMs: number | null;
  trigger: string;
  status: string;
  /** What was asked, as it was asked (recorded since migration 8; null before). */
  request: Record<string, unknown> | null;
  /** The backup made, or the error. */
  backupId: string | null;
  error: { code: string; message: string } | null;
  success: boolean;
}

/** Every scheduled or manual execution of a plan, newest first (filters and paging as task list). */
export function runPlanHistory(i: ListFilterInput & { plan: string }, ctx: Context): ListPage<PlanHistoryItem> {
  const page = runTaskPage(i, ctx);
  return {
    more: page.more,
    rows: (function* () {
      for (const t of page.rows) {
        yield {
          task: t.id,
          queuedAt: t.queuedAt,
          startedAt: t.startedAt,
          endedAt: t.endedAt,
          durationMs: t.durationMs,
          trigger: t.trigger,
          status: t.status,
          request: t.request ?? null,
          backupId: t.backupId,
          error: t.errorCode ? { code: t.errorCode, message: t.errorMessage ?? '' } : null,
          success: t.status === 'succeeded',
        };
      }
    })(),
  };
}
