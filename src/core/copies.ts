// Copies of a backup in several pools (DESIGN.md "Copies"): the catalog records one row per
// (backup, pool) in backup_copies. A copy is made artifacts first, manifest last, each artifact
// checked against the manifest's sha256; only a `ready` copy is a copy. Replica pools of a plan
// get every new backup after its run; failed copies are retried by the next run and the daemon.
import { createHash } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream';
import { Writable } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import type { Context } from './context.js';
import { DbsError, describeError } from '../errors.js';
import { backupPrefix, manifestKey, planKey } from '../storage/layout.js';
import type { PoolDriver, PullBody } from '../storage/types.js';
import type { BackupRecord, Catalog, CopyRecord, PlanRecord, PoolRecord } from '../store/catalog.js';
import { VerifyStage } from './artifacts.js';
import { backupManifest } from './manifest.js';
import { ensurePoolOnline, settleBackupStatus } from './pool-manifest.js';
import { findPoolOrThrow } from './names.js';
import { openPool } from './pools.js';
import { describeRetention } from './retention.js';
import { planReplication } from './replication.js';

export { planReplication, planStandby, type Replication } from './replication.js';

export function describeReplication(catalog: Catalog, plan: PlanRecord): string {
  const r = planReplication(plan);
  if (!r.pools.length) return '';
  return `${r.pools.map((id) => catalog.getPool(id)?.name ?? id).join(', ')} (${describeRetention(r.retention)})`;
}

export interface CopyView extends CopyRecord {
  poolName: string;
}

export function copyViews(catalog: Catalog, backupId: string): CopyView[] {
  return catalog.listCopies(backupId).map((c) => ({ ...c, poolName: catalog.getPool(c.poolId)?.name ?? c.poolId }));
}

/** The pools holding a ready copy of a backup, the primary first. */
export function readyCopies(catalog: Catalog, b: BackupRecord): CopyRecord[] {
  return catalog.listCopies(b.id).filter((c) => c.status === 'ready');
}

async function clearPrefix(driver: PoolDriver, planId: string, backupId: string, signal: AbortSignal): Promise<void> {
  const prefix = backupPrefix(planId, backupId);
  await driver.abortIncomplete(prefix, { signal });
  const keys: string[] = [];
  for await (const o of driver.list(prefix, { signal })) keys.push(o.key);
  // The manifest first: a half-removed copy must never look complete.
  keys.sort((a, b) => Number(b.endsWith('/manifest.json')) - Number(a.endsWith('/manifest.json')));
  for (const k of keys) await driver.delete(k, { signal });
}

export const CHECK_TEXT = {
  sha256: 'sha256 checked',
  'server-sha256': "sha256 checked by the server",
  'server-etag': 'checked by the server against the source (same ETag and size); sha256 not read back: dbs backup verify --from-pool reads it',
} as const;

/**
 * A PullBody that checks what passes against the manifest's size and sha256: each read is
 * hashed as it arrives; the end (a pull of 0) rejects when the bytes differ, so the put that
 * reads it fails and leaves nothing.
 */
function checkedPull(src: PullBody, expected: { sha256: string; storedBytes: number; name: string }): PullBody {
  const hash = createHash('sha256');
  let bytes = 0;
  return {
    size: src.size,
    pull: async (buf) => {
      const n = await src.pull(buf);
      if (n > 0) {
        hash.update(buf.subarray(0, n));
        bytes += n;
        return n;
      }
      const got = hash.copy().digest('hex');
      if (bytes !== expected.storedBytes || got !== expected.sha256) {
        throw new DbsError('VERIFY_FAILED', `artifact ${expected.name} is damaged: ${bytes} bytes with sha256 ${got.slice(0, 16)}..., the manifest says ${expected.storedBytes} bytes with ${expected.sha256.slice(0, 16)}...`, {
          hint: 'copy from another pool (--from-pool); run dbs backup verify on this backup',
        });
      }
      return 0;
    },
  };
}

/** Reads an object whole against the manifest's size and sha256. */
async function checkObject(driver: PoolDriver, key: string, expected: { sha256: string; storedBytes: number; name: string }, signal: AbortSignal): Promise<void> {
  const v = new VerifyStage(expected);
  await pipelineAsync(await driver.get(key, { signal }), v, new Writable({ write: (_c, _e, cb) => cb() }), { signal });
}

export interface CopyResult {
  backup: string;
  pool: string;
  status: 'ready' | 'failed';
  /** ready before the call: nothing was copied. */
  already?: boolean;
  bytes: number;
  /** How the artifacts went: 'server' (the pool copied them itself), 'stream' (through dbs). */
  method?: 'server' | 'stream';
  /**
   * How the copy was checked: 'sha256' (its bytes read against the manifest's sha256, in flight
   * or read back), 'server-sha256' (the server's SHA-256 of the copy equals the manifest's),
   * 'server-etag' (the server reports the copy with the source's ETag and size; its sha256 is
   * not read back: `backup verify ID --from-pool POOL` does, and sets the check time).
   */
  check?: 'sha256' | 'server-sha256' | 'server-etag';
  from?: string;
  error?: string;
}

/**
 * Copies one backup into a pool: every artifact (server side when the two pools share an
 * endpoint and credentials, else streamed through its sha256 check), then the plan file, then
 * the manifest last (create-if-absent). A failure leaves a `failed` copy row (never a copy)
 * and nothing at the backup's prefix there. Callers hold the plan's lock.
 */
export async function copyBackup(ctx: Context, b: BackupRecord, dst: PoolRecord, o: { from?: PoolRecord; readBack?: boolean } = {}): Promise<CopyResult> {
  const catalog = ctx.catalog();
  const m = backupManifest(b);
  const existing = catalog.getCopy(b.id, dst.id);
  if (existing?.status === 'ready') return { backup: b.id, pool: dst.name, status: 'ready', already: true, bytes: 0 };
  const sources = readyCopies(catalog, b).filter((c) => c.poolId !== dst.id);
  const srcCopy = o.from ? sources.find((c) => c.poolId === o.from!.id) : sources[0];
  if (!srcCopy) {
    throw new DbsError('BACKUP_MISSING', `backup ${b.id} has no ready copy${o.from ? ` in pool ${o.from.name}` : ''} to copy from`, {
      hint: 'see its copies with: dbs backup show ' + b.id,
    });
  }
  const src = catalog.getPool(srcCopy.poolId)!;
  const role = existing?.role ?? 'replica';
  catalog.upsertCopy({ backupId: b.id, poolId: dst.id, role, status: 'copying', error: '', attempts: (existing?.attempts ?? 0) + 1 });
  let srcDriver: PoolDriver | undefined;
  let dstDriver: PoolDriver | undefined;
  let method: 'server' | 'stream' = 'stream';
  /** The weakest check any artifact got (sha256 < server-sha256 < server-etag, in order of strength). */
  let check: 'sha256' | 'server-sha256' | 'server-etag' = 'sha256';
  let bytes = 0;
  try {
    srcDriver = await openPool(ctx, src);
    dstDriver = await openPool(ctx, dst);
    await ensurePoolOnline(srcDriver, src.name, ctx.signal);
    await ensurePoolOnline(dstDriver, dst.name, ctx.signal);
    // What an earlier attempt left.
    await clearPrefix(dstDriver, b.planId, b.id, ctx.signal);
    const manifestText = (await buffer(await srcDriver.get(manifestKey(b.planId, b.id), { signal: ctx.signal }))).toString('utf8');
    for (const a of m.artifacts) {
      const expected = { sha256: a.sha256, storedBytes: a.storedBytes, name: a.name };
      const server = dstDriver.copyFrom ? await dstDriver.copyFrom(srcDriver, a.key, a.key, { size: a.storedBytes, signal: ctx.signal }) : false;
      if (server) {
        method = 'server';
        if (server.sha256 !== undefined) {
          if (server.sha256 !== a.sha256) throw new DbsError('VERIFY_FAILED', `the copy of ${a.name} in pool ${dst.name} has sha256 ${server.sha256} (computed by the server), the manifest says ${a.sha256}`);
          if (check === 'sha256') check = 'server-sha256';
        } else if (server.sameAsSource && !o.readBack) {
          // The server copied the object inside itself and reports it with the source's ETag and
          // size; the source copy was checked when it was made. Reading the whole copy back here
          // would cost what the server-side copy saves.
          check = 'server-etag';
        } else {
          // Nothing the server says ties the copy to the source: read it back against its sha256.
          await checkObject(dstDriver, a.key, expected, ctx.signal);
        }
      } else if (srcDriver.openPull) {
        // A local source: the destination reads the file into buffers of its own while the
        // sha256 is checked on each read; a mismatch fails the put before it completes.
        const src = await srcDriver.openPull(a.key, { signal: ctx.signal });
        try {
          await dstDriver.put(a.key, checkedPull(src, expected), { signal: ctx.signal, sizeHint: a.storedBytes });
        } finally {
          await src.close();
        }
        const st = await dstDriver.stat(a.key, { signal: ctx.signal });
        if (!st || st.size !== a.storedBytes) {
          throw new DbsError('VERIFY_FAILED', `the copy of ${a.name} in pool ${dst.name} is ${st ? `${st.size} bytes` : 'missing'}, the manifest says ${a.storedBytes}`);
        }
      } else {
        const verify = new VerifyStage(expected);
        const body = await srcDriver.get(a.key, { signal: ctx.signal });
        // The body fails at its end when size or sha256 differ: put() then leaves nothing.
        pipeline(body, verify, () => undefined);
        try {
          await dstDriver.put(a.key, verify, { signal: ctx.signal, sizeHint: a.storedBytes });
        } catch (e) {
          // A put that failed before reading its body to the end must not leave the read open.
          body.destroy();
          verify.destroy();
          throw e;
        }
        const st = await dstDriver.stat(a.key, { signal: ctx.signal });
        if (!st || st.size !== a.storedBytes) {
          throw new DbsError('VERIFY_FAILED', `the copy of ${a.name} in pool ${dst.name} is ${st ? `${st.size} bytes` : 'missing'}, the manifest says ${a.storedBytes}`);
        }
      }
      bytes += a.storedBytes;
    }
    const planFile = await srcDriver.stat(planKey(b.planId), { signal: ctx.signal });
    if (planFile) await dstDriver.put(planKey(b.planId), await buffer(await srcDriver.get(planKey(b.planId), { signal: ctx.signal })), { signal: ctx.signal });
    await dstDriver.put(manifestKey(b.planId, b.id), manifestText, { ifAbsent: true, signal: ctx.signal });
    catalog.transaction(() => {
      // The check time is when the copy's sha256 was checked: not yet for an ETag-checked copy.
      catalog.upsertCopy({ backupId: b.id, poolId: dst.id, role, status: 'ready', storedBytes: bytes, checkedAt: check === 'server-etag' ? null : ctx.clock().toISOString(), error: '' });
      catalog.recordEvent({ resourceKind: 'plan', resourceId: b.planId, type: 'copy.succeeded', level: 'info', message: `${b.id}: copied from pool ${src.name} to pool ${dst.name} (${method === 'server' ? 'server-side copy' : 'streamed'}; ${CHECK_TEXT[check]})` });
      settleBackupStatus(catalog, b.id);
    });
    return { backup: b.id, pool: dst.name, status: 'ready', bytes, method, check, from: src.name };
  } catch (e) {
    if (ctx.signal.aborted) {
      catalog.upsertCopy({ backupId: b.id, poolId: dst.id, status: 'failed', error: 'interrupted' });
      throw e;
    }
    const msg = describeError(e);
    if (dstDriver) await clearPrefix(dstDriver, b.planId, b.id, AbortSignal.timeout(ctx.settings.s3Timeout * 1000)).catch(() => undefined);
    catalog.transaction(() => {
      catalog.upsertCopy({ backupId: b.id, poolId: dst.id, role, status: 'failed', error: msg });
      catalog.recordEvent({ resourceKind: 'plan', resourceId: b.planId, type: 'copy.failed', level: 'error', message: `${b.id}: copy to pool ${dst.name} failed: ${msg}` });
    });
    return { backup: b.id, pool: dst.name, status: 'failed', bytes: 0, from: src.name, error: msg };
  } finally {
    await srcDriver?.close();
    await dstDriver?.close();
  }
}

/**
 * Copies a plan's backups to its replica pools: the new one, and every copy of the plan's
 * backups that failed (or was left copying by a dead process) before. Never throws for a copy
 * that fails: it is a `failed` copy row and an event. Callers hold the plan's lock.
 */
export async function replicatePlan(plan: PlanRecord, ctx: Context, newBackup?: string): Promise<CopyResult[]> {
  const catalog = ctx.catalog();
  const r = planReplication(plan);
  const out: CopyResult[] = [];
  for (const poolId of r.pools) {
    const dst = catalog.getPool(poolId);
    if (!dst) continue;
    const todo = new Set<string>();
    if (newBackup) todo.add(newBackup);
    for (const c of catalog.listCopiesInPool(poolId, ['failed', 'copying'])) {
      const b = catalog.getBackup(c.backupId);
      if (b && b.planId === plan.id) todo.add(b.id);
    }
    // Oldest first, so an incremental's parent is there before it.
    for (const id of [...todo].sort()) {
      const b = catalog.getBackup(id);
      if (!b || b.status !== 'available') continue;
      out.push(await copyBackup(ctx, b, dst));
    }
  }
  return out;
}

/** `dbs backup copy ID --to POOL`: one copy by hand, under the plan's lock. */
export async function runBackupCopy(o: { backup: string; to: string; from?: string; readBack?: boolean }, ctx: Context): Promise<CopyResult> {
  const catalog = ctx.catalog();
  const b = catalog.getBackup(o.backup);
  if (!b) throw new DbsError('BACKUP_NOT_FOUND', `backup ${JSON.stringify(o.backup)} not found`, { hint: 'see the backups with: dbs backup list' });
  const dst = findPoolOrThrow(catalog, o.to);
  const from = o.from ? findPoolOrThrow(catalog, o.from) : undefined;
  if (from && from.id === dst.id) throw new DbsError('USAGE', `--from-pool and --to are both pool ${dst.name}`, { hint: 'copy into another pool' });
  // Chains never span pools: an incremental's parent must be in the target pool first.
  if (b.parentId) {
    const parentCopy = catalog.getCopy(b.parentId, dst.id);
    if (parentCopy?.status !== 'ready') {
      throw new DbsError('REFUSED', `backup ${b.id} builds on ${b.parentId}, which has no ready copy in pool ${dst.name}`, { hint: `copy ${b.parentId} there first: dbs backup copy ${b.parentId} --to ${dst.name}` });
    }
  }
  const { acquire, leaseOf } = await import('./locks.js');
  const lock = acquire(catalog, `plan:${b.planId}`, 'backup copy', `plan ${JSON.stringify(b.planName)}`, leaseOf(ctx));
  try {
    const r = await copyBackup({ ...ctx, signal: AbortSignal.any([ctx.signal, lock.lost]) }, b, dst, { ...(from ? { from } : {}), readBack: Boolean(o.readBack) });
    if (r.status === 'failed') throw new DbsError('COPY_FAILED', `copy of backup ${b.id} to pool ${dst.name} failed: ${r.error}`, { hint: 'fix the cause and run it again; the next plan run retries it too' });
    return r;
  } finally {
    lock.release();
  }
}

/**
 * The daemon's retry of failed copies, and of copies left `copying` by a process that died
 * (every copy is made under its plan's lock, so a `copying` row of a plan whose lock this
 * takes has no live writer): per plan, under its lock, through replicatePlan (what a plan run
 * does); a plan that is running or locked is skipped.
 */
export async function retryFailedCopies(ctx: Context, busy: (planId: string) => boolean = () => false): Promise<CopyResult[]> {
  const catalog = ctx.catalog();
  const plans = new Set<string>();
  for (const c of catalog.listCopiesByStatus(['failed', 'copying'])) {
    const b = catalog.getBackup(c.backupId);
    if (b) plans.add(b.planId);
  }
  const out: CopyResult[] = [];
  const { acquire, leaseOf } = await import('./locks.js');
  for (const id of plans) {
    const plan = catalog.getPlan(id);
    if (!plan || busy(plan.id)) continue;
    let lock;
    try {
      lock = acquire(catalog, `plan:${plan.id}`, 'copy retry', `plan ${JSON.stringify(plan.name)}`, leaseOf(ctx));
    } catch {
      continue;
    }
    try {
      out.push(...(await replicatePlan(plan, { ...ctx, signal: AbortSignal.any([ctx.signal, lock.lost]) })));
    } finally {
      lock.release();
    }
  }
  return out;
}


/** The pool's driver, proven online (POOL_UNREACHABLE otherwise, the driver closed). */
async function openOnline(ctx: Context, pool: PoolRecord): Promise<PoolDriver> {
  const driver = await openPool(ctx, pool);
  try {
    await ensurePoolOnline(driver, pool.name, ctx.signal);
  } catch (e) {
    await driver.close();
    throw e;
  }
  return driver;
}

/**
 * Picks the copy a restore or verify reads: the one in `fromPool` when given (it must be
 * ready), else the primary, else (when the primary's pool is offline) the first ready replica
 * that answers. Returns the opened, online driver; `fellBackFrom` names the offline pool.
 */
export async function openReadCopy(
  ctx: Context,
  b: BackupRecord,
  fromPool?: string,
): Promise<{ pool: PoolRecord; driver: PoolDriver; fellBackFrom?: { pool: string; reason: string } }> {
  const catalog = ctx.catalog();
  if (b.status === 'deleting') {
    throw new DbsError('BACKUP_MISSING', `backup ${b.id} is being deleted`, { hint: `see which copies are left with: dbs backup show ${b.id}` });
  }
  const copies = catalog.listCopies(b.id);
  if (fromPool) {
    const pool = findPoolOrThrow(catalog, fromPool);
    const c = copies.find((x) => x.poolId === pool.id);
    if (!c || c.status !== 'ready') {
      throw new DbsError('BACKUP_MISSING', `backup ${b.id} has no ready copy in pool ${pool.name}${c ? ` (its copy there is ${c.status})` : ''}`, {
        hint: `see its copies with: dbs backup show ${b.id}`,
      });
    }
    return { pool, driver: await openOnline(ctx, pool) };
  }
  const ready = copies.filter((c) => c.status === 'ready');
  if (!ready.length) {
    // No ready copy: the primary is read so the caller finds out what is wrong with it.
    const pool = catalog.getPool(b.poolId);
    if (!pool) throw new DbsError('POOL_NOT_FOUND', `the pool ${b.poolId} of backup ${b.id} is not bound`, { hint: 'bind it again' });
    return { pool, driver: await openOnline(ctx, pool) };
  }
  let first: { pool: string; reason: string; error: unknown } | undefined;
  for (const c of ready) {
    const pool = catalog.getPool(c.poolId);
    if (!pool) continue;
    const driver = await openPool(ctx, pool);
    try {
      await ensurePoolOnline(driver, pool.name, ctx.signal);
      return { pool, driver, ...(first ? { fellBackFrom: { pool: first.pool, reason: first.reason } } : {}) };
    } catch (e) {
      await driver.close();
      if (ctx.signal.aborted) throw e;
      const offline = e instanceof DbsError && (e.code === 'POOL_UNREACHABLE' || e.code === 'POOL_AUTH');
      if (!offline) throw e;
      first ??= { pool: pool.name, reason: e.message, error: e };
    }
  }
  throw first!.error;
}
