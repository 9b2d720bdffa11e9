// Backup use cases: list, show, delete, verify.
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from './context.js';
import { DbsError, describeError } from '../errors.js';
import { backupPrefix, manifestKey } from '../storage/layout.js';
import type { BackupRecord, Catalog } from '../store/catalog.js';
import { DESCRIPTORS, descriptorOrThrow } from '../engines/registry.js';
import type { BackupType, TreeEntry } from '../engines/types.js';
import { typeSpecOf } from './applicable.js';
import { artifactReaders, VerifyStage } from './artifacts.js';
import { checkPoolManifest, ensurePoolOnline } from './pool-manifest.js';
import { sweepStaleUploads } from './recovery.js';
import { makeScratch } from './scratch.js';
import { chainOf, dependentsOf, openChain } from './chains.js';
import { pidAlive } from './locks.js';
import { identitiesFor } from './identity.js';
import { backupManifest, type Manifest } from './manifest.js';
import type { AgeIdentities } from '../pipeline/stages.js';
import { findPlanOrThrow } from './plans.js';
import { findPoolOrThrow } from './names.js';
import { openPool } from './pools.js';
import { copyViews, openReadCopy, type CopyView } from './copies.js';

export function findBackupOrThrow(catalog: Catalog, id: string): BackupRecord {
  const b = catalog.getBackup(id);
  if (!b) throw new DbsError('BACKUP_NOT_FOUND', `backup ${JSON.stringify(id)} not found`, { hint: 'see the backups with: dbs backup list' });
  return b;
}

export type BackupSummary = Omit<BackupRecord, 'manifest'> & { poolName: string; ratio: number | null; copies: { pool: string; role: string; status: string }[] };

export function summarize(catalog: Catalog, b: BackupRecord): BackupSummary {
  const { manifest: _m, ...rest } = b;
  return {
    ...rest,
    poolName: catalog.getPool(b.poolId)?.name ?? b.poolId,
    ratio: b.rawBytes ? Math.round((b.storedBytes / b.rawBytes) * 1000) / 1000 : null,
    copies: copyViews(catalog, b.id).map((c) => ({ pool: c.poolName, role: c.role, status: c.status })),
  };
}

export function runBackupList(o: { plan?: string; pool?: string }, ctx: Context): BackupSummary[] {
  const catalog = ctx.catalog();
  const planId = o.plan ? findPlanOrThrow(catalog, o.plan).id : undefined;
  const poolId = o.pool ? findPoolOrThrow(catalog, o.pool).id : undefined;
  // A failed or unfinished copy is no copy: --pool lists the backups with a ready (or missing) copy there.
  return catalog.listBackups({ planId, poolId, ...(poolId ? { copyStatus: ['ready' as const, 'missing' as const] } : {}) }).map((b) => summarize(catalog, b));
}

/** A copy whose delete has not finished, and what happens to it. */
export interface PendingDelete {
  pool: string;
  /** Why the last attempt failed. */
  error: string;
  attempts: number;
  /** When it was last tried. */
  at: string;
  /** Who deletes it again. */
  retry: string;
}

export function runBackupShow(o: { backup: string }, ctx: Context): Manifest & { status: string; pool: string; copies: CopyView[]; pendingDeletes: PendingDelete[] } {
  const catalog = ctx.catalog();
  const b = findBackupOrThrow(catalog, o.backup);
  const copies = copyViews(catalog, b.id);
  const retry = `the daemon's next pass, the next run or prune of plan ${b.planName}, or dbs backup delete ${b.id}`;
  const pendingDeletes = copies.filter((c) => c.status === 'deleting').map((c) => ({ pool: c.poolName, error: c.error, attempts: c.attempts, at: c.updatedAt, retry }));
  return { ...backupManifest(b), status: b.status, pool: catalog.getPool(b.poolId)?.name ?? b.poolId, copies, pendingDeletes };
}

/** Restores of this backup that are running in a live process. */
function runningRestores(catalog: Catalog, backupId: string) {
  return catalog.listRestores({ backupId, status: 'running' }).filter((r) => r.pid !== null && pidAlive(r.pid));
}

/**
 * Deletes a backup: artifacts first, then the manifest, then the catalog row, so that an
 * interrupted delete never leaves a manifest that points at missing data.
 */
export async function deleteBackupData(ctx: Context, b: BackupRecord): Promise<void> {
  const catalog = ctx.catalog();
  if (runningRestores(catalog, b.id).length) {
    throw new DbsError('IN_USE', `backup ${b.id} is being restored`, { hint: 'wait for the restore to finish (see: dbs restore list)' });
  }
  const dependents = catalog.listBackups().filter((x) => x.parentId === b.id);
  if (dependents.length) {
    throw new DbsError('REFUSED', `backup ${b.id} is the base of ${dependents.map((d) => d.id).join(', ')}`, { hint: 'pass --cascade to delete the dependent backups too' });
  }
  // Every copy is "deleting" from the start, with a reason: a process killed or interrupted
  // midway leaves the whole backup to be deleted again (daemon, next run, delete again), never
  // a half-deleted backup whose other copies look ready.
  const started = startedReason(catalog.now());
  const copies = catalog.listCopies(b.id).reverse();
  catalog.transaction(() => {
    catalog.updateBackup(b.id, { status: 'deleting' });
    for (const c of copies) catalog.upsertCopy({ backupId: b.id, poolId: c.poolId, status: 'deleting', error: started, attempts: c.status === 'deleting' ? c.attempts : 0 });
  });
  // Every copy (failed ones too: they may have left objects), the primary last. A copy whose
  // pool does not answer stays "deleting" (retried later); the others go now.
  const pending: { pool: string; error: string }[] = [];
  for (const [i, c] of copies.entries()) {
    let r: CopyDeleteResult;
    try {
      r = await deleteCopyData(ctx, b, c.poolId);
    } catch (e) {
      // Interrupted: the copies not tried yet say so too.
      if (ctx.signal.aborted) {
        const msg = interruptedReason(ctx.signal);
        for (const rest of copies.slice(i + 1)) if (catalog.getCopy(b.id, rest.poolId)) catalog.upsertCopy({ backupId: b.id, poolId: rest.poolId, status: 'deleting', error: msg });
      }
      throw e;
    }
    if (r.pending !== undefined) pending.push({ pool: catalog.getPool(c.poolId)?.name ?? c.poolId, error: r.pending });
  }
  if (pending.length) {
    const pools = pending.map((x) => x.pool);
    throw new DbsError('DELETE_PENDING', `backup ${b.id} is not deleted yet: its cop${pending.length === 1 ? 'y' : 'ies'} in pool ${pools.join(', ')} could not be deleted (${pending.map((x) => x.error).join('; ')}); it stays "deleting" until ${pending.length === 1 ? 'it is' : 'they are'}`, {
      hint: `the daemon and the next run of plan ${b.planName} retry it; or run dbs backup delete ${b.id} again when the pool answers (dbs pool check ${pools[0]}), or forget the copy with dbs pool unbind ${pools[0]} --forget-backups`,
      details: { backup: b.id, pending },
    });
  }
  catalog.transaction(() => {
    catalog.deleteBackup(b.id);
    catalog.recordEvent({ resourceKind: 'plan', resourceId: b.planId, type: 'backup.deleted', level: 'info', message: `deleted backup ${b.id}` });
  });
}

const startedReason = (at: string) => `a delete started at ${at} by dbs process ${process.pid} on ${hostname()} did not finish`;
function interruptedReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return `the delete was ${reason instanceof Error && reason.message ? reason.message : 'interrupted'} before it finished`;
}

export interface CopyDeleteResult {
  /** The backup left the catalog: this was its last copy. */
  gone: boolean;
  /** Why the copy could not be deleted: it stays "deleting", to be retried. */
  pending?: string;
}

/**
 * Deletes one copy of a backup: its artifacts, then its manifest, then the copy row; when that
 * was the last copy, the backup leaves the catalog. The copy is "deleting" (no copy: nothing
 * reads, counts or copies from it) from the start; when its pool does not answer (or a delete
 * fails) it stays so with the reason, and the backup is "deleting" once no ready copy is left.
 */
export async function deleteCopyData(ctx: Context, b: BackupRecord, poolId: string): Promise<CopyDeleteResult> {
  const catalog = ctx.catalog();
  const pool = catalog.getPool(poolId);
  const cur = catalog.getCopy(b.id, poolId);
  if (pool && cur) {
    // The reason is there from the start: a process killed outright (SIGKILL, power loss)
    // leaves a "deleting" copy that says what happened to it; retried later like the others.
    catalog.upsertCopy({ backupId: b.id, poolId, status: 'deleting', error: startedReason(catalog.now()) });
    try {
      const driver = await openPool(ctx, pool);
      try {
        // An unmounted disk lists nothing: prove the pool is there before calling its copy gone.
        await ensurePoolOnline(driver, pool.name, ctx.signal);
        const mkey = manifestKey(b.planId, b.id);
        const keys: string[] = [];
        for await (const o of driver.list(backupPrefix(b.planId, b.id), { signal: ctx.signal })) if (o.key !== mkey) keys.push(o.key);
        for (const k of keys) await driver.delete(k, { signal: ctx.signal });
        await driver.abortIncomplete(backupPrefix(b.planId, b.id), { signal: ctx.signal });
        await driver.delete(mkey, { signal: ctx.signal });
      } finally {
        await driver.close();
      }
    } catch (e) {
      const interrupted = ctx.signal.aborted;
      const msg = interrupted ? interruptedReason(ctx.signal) : describeError(e);
      catalog.transaction(() => {
        catalog.upsertCopy({ backupId: b.id, poolId, status: 'deleting', error: msg, attempts: (cur.status === 'deleting' ? cur.attempts : 0) + 1 });
        catalog.recordEvent({ resourceKind: 'plan', resourceId: b.planId, type: 'copy.delete-failed', level: 'warning', message: `${b.id}: its copy in pool ${pool.name} could not be deleted (${msg}); it stays "deleting" and is deleted again later` });
        const b2 = catalog.getBackup(b.id);
        if (b2?.status === 'available' && !catalog.listCopies(b.id).some((c) => c.status === 'ready')) catalog.updateBackup(b.id, { status: 'deleting' });
      });
      if (interrupted) throw e;
      return { gone: false, pending: msg };
    }
  }
  return { gone: catalog.deleteCopy(b.id, poolId) };
}

export interface PendingDeleteResult {
  backup: string;
  pool: string;
  /** The backup left the catalog with this copy. */
  gone: boolean;
  /** Still not deleted: why. */
  pending?: string;
}

/**
 * Deletes again the copies whose delete did not finish ("deleting"): those of one plan (the
 * caller holds its lock), or of every plan, each under its lock (a plan that is busy or locked
 * is left for the next pass).
 */
export async function retryPendingDeletes(ctx: Context, o: { planId?: string; busy?: (planId: string) => boolean } = {}): Promise<PendingDeleteResult[]> {
  const catalog = ctx.catalog();
  const byPlan = new Map<string, { backupId: string; poolId: string }[]>();
  for (const c of catalog.listCopiesByStatus(['deleting'])) {
    const b = catalog.getBackup(c.backupId);
    if (!b || (o.planId !== undefined && b.planId !== o.planId)) continue;
    byPlan.set(b.planId, [...(byPlan.get(b.planId) ?? []), { backupId: b.id, poolId: c.poolId }]);
  }
  const out: PendingDeleteResult[] = [];
  const { acquire, leaseOf } = await import('./locks.js');
  for (const [planId, copies] of byPlan) {
    if (o.busy?.(planId)) continue;
    let lock: ReturnType<typeof acquire> | undefined;
    if (o.planId === undefined) {
      try {
        lock = acquire(catalog, `plan:${planId}`, 'delete retry', `plan ${planId}`, leaseOf(ctx));
      } catch {
        continue;
      }
    }
    try {
      const c2 = lock ? { ...ctx, signal: AbortSignal.any([ctx.signal, lock.lost]) } : ctx;
      // Newest first: an incremental goes before the backup it builds on.
      for (const { backupId, poolId } of copies.sort((a, b) => (a.backupId < b.backupId ? 1 : -1))) {
        const b = catalog.getBackup(backupId);
        if (!b || catalog.getCopy(backupId, poolId)?.status !== 'deleting') continue;
        const r = await deleteCopyData(c2, b, poolId);
        const pool = catalog.getPool(poolId)?.name ?? poolId;
        if (r.pending === undefined) {
          catalog.recordEvent({ resourceKind: 'plan', resourceId: b.planId, type: r.gone ? 'backup.deleted' : 'copy.deleted', level: 'info', message: `${b.id}: its copy in pool ${pool} is deleted now${r.gone ? ' (its last copy: the backup is gone)' : ''}` });
        }
        out.push({ backup: b.id, pool, gone: r.gone, ...(r.pending !== undefined ? { pending: r.pending } : {}) });
      }
    } finally {
      lock?.release();
    }
  }
  return out;
}

export async function runBackupDelete(o: { backup: string; cascade?: boolean }, ctx: Context): Promise<{ backup: string; plan: string; deleted: string[] }> {
  const catalog = ctx.catalog();
  const b = findBackupOrThrow(catalog, o.backup);
  const deleted: string[] = [];
  if (o.cascade) {
    // Newest dependents first, so no remaining backup ever loses its parent.
    for (const d of dependentsOf(catalog, b.id)) {
      await deleteBackupData(ctx, d);
      deleted.push(d.id);
    }
  }
  await deleteBackupData(ctx, b);
  deleted.push(b.id);
  return { backup: b.id, plan: b.planName, deleted };
}

export interface VerifyResult {
  backup: string;
  /** The pool whose copy was read. */
  pool: string;
  ok: boolean;
  /** With --prepare: the engine's restorability check of the backup and its chain. */
  prepared?: { ok: boolean; check: string; problem?: string; facts?: Record<string, unknown> };
  artifacts: { name: string; ok: boolean; bytes: number; problem?: string }[];
}

/** Reads every artifact back and checks size and sha256 against the manifest. */
export async function runBackupVerify(o: { backup: string; prepare?: boolean; fromPool?: string; identityFile?: string }, ctx: Context): Promise<VerifyResult> {
  const catalog = ctx.catalog();
  const b = findBackupOrThrow(catalog, o.backup);
  const m = backupManifest(b);
  // Sizes and sha256 are of the stored (encrypted) bytes: no key needed. --prepare reads the data.
  if (o.identityFile !== undefined && !o.prepare) throw new DbsError('USAGE', '--identity-file applies with --prepare (the checks of the stored bytes need no key)', { hint: 'add --prepare or drop --identity-file' });
  const identities = o.prepare ? await identitiesFor(ctx, { identityFile: o.identityFile, flag: '--identity-file', action: 'verify --prepare' }, chainOf(catalog, b)) : undefined;
  // Offline is not damaged: an unmounted pool or a dead endpoint is exit 6. Without
  // --from-pool: the primary copy, or a replica when the primary's pool is offline.
  const { pool, driver, fellBackFrom } = await openReadCopy(ctx, b, o.fromPool);
  if (fellBackFrom) reportFallback(ctx, b, pool.name, fellBackFrom);
  const out: VerifyResult = { backup: b.id, pool: pool.name, ok: true, artifacts: [] };
  try {
    await sweepStaleUploads(ctx, driver, pool, () => undefined);
    const mc = await checkPoolManifest(ctx, driver, b, pool.id);
    if (!mc.ok) {
      out.ok = false;
      out.artifacts.push({ name: 'manifest.json', ok: false, bytes: 0, problem: mc.problem });
    }
    for (const a of m.artifacts) {
      const v = new VerifyStage({ sha256: a.sha256, storedBytes: a.storedBytes, name: a.name });
      try {
        const src = await driver.get(a.key, { signal: ctx.signal });
        await pipeline(src, v, new Writable({ write: (_c, _e, cb) => cb() }), { signal: ctx.signal });
        out.artifacts.push({ name: a.name, ok: true, bytes: v.bytes });
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        out.ok = false;
        out.artifacts.push({ name: a.name, ok: false, bytes: v.bytes, problem: (e as Error).message });
      }
    }
  } finally {
    await driver.close();
  }
  if (out.ok) {
    const c = catalog.getCopy(b.id, pool.id);
    if (c) catalog.upsertCopy({ backupId: b.id, poolId: pool.id, status: c.status, checkedAt: ctx.clock().toISOString() });
  }
  if (o.prepare) out.prepared = await prepareCheck(ctx, b, pool.id, identities);
  if (out.prepared && !out.prepared.ok) out.ok = false;
  catalog.recordEvent({
    resourceKind: 'plan',
    resourceId: b.planId,
    type: out.ok ? 'backup.verified' : 'backup.damaged',
    level: out.ok ? 'info' : 'error',
    message: `${b.id}: ${out.ok ? `verified${out.prepared ? ' and prepared' : ''}` : [...out.artifacts.filter((a) => !a.ok).map((a) => `${a.name}: ${a.problem}`), ...(out.prepared?.problem ? [`prepare: ${out.prepared.problem}`] : [])].join('; ')}`,
  });
  return out;
}

/**
 * The engine's restorability check without a target (engine.verifyPrepare), for the types whose
 * descriptor declares one (`prepareCheck`): e.g. a physical chain extracted and prepared in a
 * scratch dir, a logical dump read back whole.
 */
async function prepareCheck(ctx: Context, b: BackupRecord, poolId: string, identities: AgeIdentities | undefined): Promise<NonNullable<VerifyResult['prepared']>> {
  const d = descriptorOrThrow(b.sourceKind);
  const check = typeSpecOf(b.sourceKind, b.backupType).spec.prepareCheck;
  const engine = check ? await d.load() : undefined;
  if (!check || !engine?.verifyPrepare) {
    const which = DESCRIPTORS.filter((x) => Object.values(x.types).some((t) => t?.prepareCheck)).map((x) => x.title);
    throw new DbsError('INVALID_ARGUMENT', `--prepare applies to ${which.join(', ')} backups; ${b.id} is a ${b.sourceKind} ${b.backupType} backup`, { hint: 'drop --prepare' });
  }
  const catalog = ctx.catalog();
  const opened = await openChain(ctx, d, chainOf(catalog, b), undefined, identities, poolId);
  const tmpDir = await makeScratch(ctx, 'verify');
  try {
    const last = opened.links.at(-1)!;
    const selection = d.decodeSelection(backupManifest(b).selection, `the selection of backup ${b.id}`);
    const r = await engine.verifyPrepare({ type: b.backupType as BackupType, selection, facts: last.facts, artifacts: last.artifacts, chain: opened.links }, { signal: ctx.signal, tmpDir, log: () => undefined });
    return { ok: true, check, facts: r.facts };
  } catch (e) {
    if (ctx.signal.aborted) throw e;
    return { ok: false, check, problem: (e as Error).message };
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
    await opened.close();
  }
}

/**
 * The tree a backup holds (`dbs backup ls`), from its index: engines of trees (directories,
 * buckets) implement `list`; others have no tree to list.
 */
export async function runBackupLs(o: { backup: string; paths?: string[] }, ctx: Context): Promise<{ backup: string; entries: TreeEntry[] }> {
  const catalog = ctx.catalog();
  const b = findBackupOrThrow(catalog, o.backup);
  const d = descriptorOrThrow(b.sourceKind);
  const engine = await d.load();
  if (!engine.list) throw new DbsError('USAGE', `backup ${b.id} is a ${b.sourceKind} backup, which holds no tree to list`, { hint: 'dbs backup ls lists directory and bucket backups; see dbs backup show ID' });
  const paths = (o.paths ?? []).map((p) => p.split('/').filter((x) => x !== '' && x !== '.').join('/'));
  if (paths.some((p) => p === '' || p.split('/').includes('..'))) throw new DbsError('INVALID_ARGUMENT', '--path must name a path inside the tree, without ".."', { hint: 'e.g. --path etc/app' });
  const m = backupManifest(b);
  const pool = catalog.getPool(b.poolId);
  if (!pool) throw new DbsError('POOL_NOT_FOUND', `the pool ${b.poolId} of backup ${b.id} is not bound`, { hint: 'bind it again' });
  const driver = await openPool(ctx, pool);
  const tmpDir = await makeScratch(ctx, 'verify');
  try {
    const entries = await engine.list(
      { type: b.backupType as BackupType, selection: d.decodeSelection(m.selection, `the selection of backup ${b.id}`), facts: d.decodeFacts(m.facts, `the facts of backup ${b.id}`), artifacts: artifactReaders(driver, m.artifacts, ctx.signal), paths },
      { signal: ctx.signal, tmpDir, log: () => undefined },
    );
    return { backup: b.id, entries };
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
    await driver.close();
  }
}

/** Tells (event + catalog event) that a read uses a replica because the primary's pool is offline. */
export function reportFallback(ctx: Context, b: BackupRecord, pool: string, from: { pool: string; reason: string }): void {
  ctx.report({ type: 'copy.fallback', backup: b.id, pool, offline: from.pool, reason: from.reason });
  ctx.catalog().recordEvent({ resourceKind: 'plan', resourceId: b.planId, type: 'copy.fallback', level: 'warning', message: `${b.id}: pool ${from.pool} is offline (${from.reason}); read the copy in pool ${pool}` });
}
