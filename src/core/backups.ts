// Backup use cases: list, show, delete, verify.
import { rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from './context.js';
import { DbsError } from '../errors.js';
import { backupPrefix, manifestKey } from '../storage/layout.js';
import type { BackupRecord, Catalog } from '../store/catalog.js';
import { DESCRIPTORS, descriptorOrThrow } from '../engines/registry.js';
import type { BackupType, TreeEntry } from '../engines/types.js';
import { typeSpecOf } from './applicable.js';
import { artifactReaders, VerifyStage } from './artifacts.js';
import { checkPoolManifest } from './pool-manifest.js';
import { sweepStaleUploads } from './recovery.js';
import { makeScratch } from './scratch.js';
import { chainOf, dependentsOf, openChain } from './chains.js';
import { pidAlive } from './locks.js';
import { identitiesFor } from './identity.js';
import { backupManifest, type Manifest } from './manifest.js';
import type { AgeIdentities } from '../pipeline/stages.js';
import { findPlanOrThrow } from './plans.js';
import { findPoolOrThrow, openPool } from './pools.js';
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

export function runBackupShow(o: { backup: string }, ctx: Context): Manifest & { status: string; pool: string; copies: CopyView[] } {
  const catalog = ctx.catalog();
  const b = findBackupOrThrow(catalog, o.backup);
  return { ...backupManifest(b), status: b.status, pool: catalog.getPool(b.poolId)?.name ?? b.poolId, copies: copyViews(catalog, b.id) };
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
  catalog.updateBackup(b.id, { status: 'deleting' });
  // Every copy (failed ones too: they may have left objects), the primary last.
  for (const c of catalog.listCopies(b.id).reverse()) await deleteCopyData(ctx, b, c.poolId);
  catalog.transaction(() => {
    catalog.deleteBackup(b.id);
    catalog.recordEvent({ resourceKind: 'plan', resourceId: b.planId, type: 'backup.deleted', level: 'info', message: `deleted backup ${b.id}` });
  });
}

/**
 * Deletes one copy of a backup: its artifacts, then its manifest, then the copy row; when that
 * was the last copy, the backup leaves the catalog (returns true).
 */
export async function deleteCopyData(ctx: Context, b: BackupRecord, poolId: string): Promise<boolean> {
  const catalog = ctx.catalog();
  const pool = catalog.getPool(poolId);
  if (pool) {
    const driver = await openPool(ctx, pool);
    try {
      const mkey = manifestKey(b.planId, b.id);
      const keys: string[] = [];
      for await (const o of driver.list(backupPrefix(b.planId, b.id), { signal: ctx.signal })) if (o.key !== mkey) keys.push(o.key);
      for (const k of keys) await driver.delete(k, { signal: ctx.signal });
      await driver.abortIncomplete(backupPrefix(b.planId, b.id), { signal: ctx.signal });
      await driver.delete(mkey, { signal: ctx.signal });
    } finally {
      await driver.close();
    }
  }
  return catalog.deleteCopy(b.id, poolId);
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
