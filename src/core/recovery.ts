// What a dead dbs process may leave in a pool, and how every later entry point cleans it up:
// - a backup whose manifest was written but whose catalog row was not (killed between the
//   two): adopted when its artifacts are all there with their recorded sizes, else removed;
// - artifacts of a backup that never got its manifest: removed;
// - incomplete (multipart) uploads of tasks that no live process runs: aborted.
import { buffer } from 'node:stream/consumers';
import type { Context } from './context.js';
import { describeError } from '../errors.js';
import { backupPrefix, backupsPrefix } from '../storage/layout.js';
import type { PoolDriver } from '../storage/types.js';
import type { PoolRecord, TaskRecord } from '../store/catalog.js';
import { isStale } from './locks.js';
import { decodeManifest, newBackupId, type Manifest } from './manifest.js';

/** Something recovery or the daemon did, for the log (the daemon's JSON lines). */
export interface RecoveryEvent {
  event: string;
  level: 'info' | 'warning' | 'error';
  message: string;
  plan?: string;
  task?: string;
  backup?: string;
  [k: string]: unknown;
}

/**
 * Plans of this pool that no live process holds now: a task takes its plan's lock (a lease)
 * before it uploads anything, so an upload under a plan without a live lock is stale.
 */
function idlePlans(ctx: Context, pool: PoolRecord, alsoPlan?: string): string[] {
  const catalog = ctx.catalog();
  const now = new Date(catalog.now());
  return catalog
    .listPlans({ poolId: pool.id })
    .filter((p) => {
      if (p.id === alsoPlan) return true;
      const l = catalog.getLock(`plan:${p.id}`);
      return l === undefined || isStale(l, now, ctx.settings.lockLease);
    })
    .map((p) => p.id);
}

/**
 * Aborts incomplete uploads of plans that no live process runs, and records on the pool how
 * many it found (dbs_pool_orphan_uploads). `alsoPlan`: a plan whose lock
 * the caller holds (its own task has not started writing yet), swept too.
 */
export async function sweepStaleUploads(ctx: Context, driver: PoolDriver, pool: PoolRecord, log: (e: RecoveryEvent) => void, alsoPlan?: string): Promise<number> {
  const catalog = ctx.catalog();
  let total = 0;
  for (const planId of idlePlans(ctx, pool, alsoPlan)) {
    const aborted = await driver.abortIncomplete(backupsPrefix(planId), { signal: ctx.signal });
    if (aborted > 0) {
      const name = catalog.getPlan(planId)?.name ?? planId;
      const message = `aborted ${aborted} incomplete upload(s) of plan ${name} in pool ${pool.name}, left by a process that died`;
      catalog.recordEvent({ resourceKind: 'pool', resourceId: pool.id, type: 'uploads.aborted', level: 'warning', message });
      log({ event: 'uploads.aborted', level: 'warning', message, plan: name });
      total += aborted;
    }
  }
  // What the orphan-uploads metric reads (cheap at scrape time: no listing then).
  catalog.setPoolOrphanUploads(pool.id, total);
  return total;
}

/**
 * For a task of a dead process: its backup (the ids of a task's backups start with the task's
 * start time) is adopted into the catalog when its manifest is in the pool and every artifact
 * is there with its recorded size; otherwise what it left is removed.
 */
export async function settleDeadTask(ctx: Context, driver: PoolDriver, t: TaskRecord, log: (e: RecoveryEvent) => void): Promise<'adopted' | 'removed' | 'none'> {
  const catalog = ctx.catalog();
  const stamp = newBackupId(new Date(t.startedAt ?? t.queuedAt), '');
  const prefix = backupsPrefix(t.planId);
  const byBackup = new Map<string, string[]>();
  for await (const o of driver.list(prefix, { signal: ctx.signal })) {
    const id = o.key.slice(prefix.length).split('/')[0];
    if (!id.startsWith(stamp) || catalog.getBackup(id)) continue;
    byBackup.set(id, [...(byBackup.get(id) ?? []), o.key]);
  }
  let outcome: 'adopted' | 'removed' | 'none' = 'none';
  for (const [id, keys] of byBackup) {
    const mkey = `${backupPrefix(t.planId, id)}manifest.json`;
    let m: Manifest | undefined;
    let why = 'it has no manifest';
    if (keys.includes(mkey)) {
      try {
        m = decodeManifest(JSON.parse((await buffer(await driver.get(mkey, { signal: ctx.signal }))).toString('utf8')), `the manifest ${mkey} in ${driver.location}`);
        for (const a of m.artifacts) {
          const info = await driver.stat(a.key, { signal: ctx.signal });
          if (!info || info.size !== a.storedBytes) {
            why = `its artifact ${a.name} is ${info ? `${info.size} bytes, not ${a.storedBytes}` : 'missing'}`;
            m = undefined;
            break;
          }
        }
        if (m && m.backupId !== id) {
          why = `its manifest names backup ${m.backupId}`;
          m = undefined;
        }
      } catch (e) {
        why = `its manifest cannot be read: ${describeError(e)}`;
        m = undefined;
      }
    }
    if (m) {
      const man = m;
      catalog.transaction(() => {
        catalog.insertBackup({
          id,
          planId: t.planId,
          planName: man.plan.name,
          taskId: t.id,
          poolId: catalog.getPlan(t.planId)?.poolId ?? '',
          status: 'available',
          sourceKind: man.source.kind,
          backupType: man.backupType,
          parentId: man.parentId,
          rawBytes: man.rawBytes,
          storedBytes: man.storedBytes,
          startedAt: man.startedAt,
          endedAt: man.endedAt,
          manifest: man,
        });
        catalog.updateTask(t.id, { status: 'succeeded', backupId: id, rawBytes: man.rawBytes, storedBytes: man.storedBytes, endedAt: man.endedAt, errorCode: null, errorMessage: null });
        catalog.recordEvent({ resourceKind: 'plan', resourceId: t.planId, type: 'backup.adopted', level: 'warning', message: `backup ${id} was complete in the pool (manifest written) when the process of task ${t.id} died; adopted into the catalog` });
      });
      log({ event: 'backup.adopted', level: 'warning', message: `backup ${id} of ${t.planName} was complete in the pool when its process died; adopted`, plan: t.planName, task: t.id, backup: id });
      outcome = 'adopted';
    } else {
      // Artifacts first, the manifest last: a half-removed backup never looks complete.
      const sorted = [...keys].sort((a, b) => Number(a === mkey) - Number(b === mkey));
      for (const k of sorted) await driver.delete(k, { signal: ctx.signal });
      catalog.recordEvent({ resourceKind: 'plan', resourceId: t.planId, type: 'backup.removed', level: 'warning', message: `removed what task ${t.id} left of backup ${id} (${why}) when its process died` });
      log({ event: 'backup.partial.removed', level: 'warning', message: `removed the partial backup ${id} of ${t.planName}: ${why}`, plan: t.planName, task: t.id, backup: id });
      if (outcome === 'none') outcome = 'removed';
    }
  }
  return outcome;
}
