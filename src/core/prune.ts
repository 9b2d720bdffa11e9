// Applies a plan's retention per copy: the plan's own rules to its copies in its pool, the
// remote rules (--remote-keep-*) to its copies in each replica pool. Deletes what planPrune()
// returns, artifacts first; a backup leaves the catalog when its last copy is gone.
import type { Context } from './context.js';
import type { PlanRecord } from '../store/catalog.js';
import { deleteCopyData, retryPendingDeletes } from './backups.js';
import { planReplication, planStandby } from './copies.js';
import { findPlanOrThrow } from './plans.js';
import { planPrune, planRetention, type PruneDecision, type Retention } from './retention.js';
import { planSchedule } from './schedule.js';

export interface CopyPruneDecision extends PruneDecision {
  /** The pool whose copy goes. */
  poolId: string;
  pool: string;
}

/** The pools a plan's retention looks at, each with its rules: its own pool first, then its replicas. */
function retentionPools(plan: PlanRecord): { poolId: string; rule: Retention }[] {
  const r = planReplication(plan);
  const standby = planStandby(plan);
  // The plan's own rules apply to its pool and to its standby (where backups go while the pool is offline).
  const own = [plan.poolId, ...(standby && standby !== plan.poolId ? [standby] : [])].map((poolId) => ({ poolId, rule: planRetention(plan) }));
  return [...own, ...r.pools.filter((p) => p !== plan.poolId && p !== standby).map((poolId) => ({ poolId, rule: r.retention }))];
}

function poolDecisions(plan: PlanRecord, ctx: Context, poolId: string, rule: Retention): PruneDecision[] {
  const catalog = ctx.catalog();
  // Only ready copies count (a missing, failed or copying one is no copy): they neither count
  // as kept nor are pruned.
  const backups = catalog.listBackups({ planId: plan.id, poolId, copyStatus: ['ready'] });
  const schedule = planSchedule(plan);
  const tz = schedule.kind === 'manual' ? 'UTC' : schedule.tz;
  const decisions = planPrune(rule, backups, ctx.clock(), tz);
  // Backups of other plans (incrementals on this plan's fulls) may depend on ours: never
  // delete a copy that a copy in the same pool outside the deletion set builds on.
  const all = catalog.listBackups({ poolId });
  const doomed = new Set(decisions.map((d) => d.id));
  for (let changed = true; changed; ) {
    changed = false;
    for (const b of all) {
      if (!doomed.has(b.id) && b.parentId && doomed.has(b.parentId)) {
        doomed.delete(b.parentId);
        changed = true;
      }
    }
  }
  return decisions.filter((d) => doomed.has(d.id));
}

export function pruneDecisions(plan: PlanRecord, ctx: Context): CopyPruneDecision[] {
  const catalog = ctx.catalog();
  return retentionPools(plan).flatMap(({ poolId, rule }) =>
    poolDecisions(plan, ctx, poolId, rule).map((d) => ({ ...d, poolId, pool: catalog.getPool(poolId)?.name ?? poolId })),
  );
}

/**
 * Deletes what the plan's retention no longer keeps, and first the copies of its backups whose
 * delete did not finish before ("deleting"). A copy whose pool does not answer stays "deleting"
 * (an event says why) and the others go on. Returns the backups that left the catalog.
 */
export async function applyRetention(plan: PlanRecord, ctx: Context): Promise<string[]> {
  const catalog = ctx.catalog();
  const deleted = (await retryPendingDeletes(ctx, { planId: plan.id })).filter((r) => r.gone).map((r) => r.backup);
  // Newest first, so an incremental goes before the backup it builds on.
  for (const d of pruneDecisions(plan, ctx).sort((a, b) => (a.id < b.id ? 1 : -1))) {
    const b = catalog.getBackup(d.id);
    if (!b) continue;
    const r = await deleteCopyData(ctx, b, d.poolId);
    if (r.pending !== undefined) continue;
    catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'retention.deleted', level: 'info', message: `${d.id} in pool ${d.pool}: ${d.reason}${r.gone ? ' (its last copy: the backup is gone)' : ''}` });
    if (r.gone) deleted.push(d.id);
  }
  return deleted;
}

export async function runPlanPrune(
  o: { plan: string; dryRun?: boolean },
  ctx: Context,
): Promise<{ plan: string; dryRun: boolean; deleted: CopyPruneDecision[]; pending: (CopyPruneDecision & { error: string })[] }> {
  const catalog = ctx.catalog();
  const plan = findPlanOrThrow(catalog, o.plan);
  const decisions = pruneDecisions(plan, ctx);
  if (o.dryRun) return { plan: plan.name, dryRun: true, deleted: decisions, pending: [] };
  await applyRetention(plan, ctx);
  // A copy whose pool did not answer stays "deleting": not deleted, and said so.
  const pendingOf = (d: CopyPruneDecision) => {
    const c = catalog.getCopy(d.id, d.poolId);
    return c?.status === 'deleting' ? c.error : undefined;
  };
  return {
    plan: plan.name,
    dryRun: false,
    deleted: decisions.filter((d) => pendingOf(d) === undefined),
    pending: decisions.flatMap((d) => {
      const error = pendingOf(d);
      return error === undefined ? [] : [{ ...d, error }];
    }),
  };
}
