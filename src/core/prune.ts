// Applies a plan's retention: deletes what planPrune() returns, artifacts first.
import type { Context } from './context.js';
import type { PlanRecord } from '../store/catalog.js';
import { deleteBackupData } from './backups.js';
import { findPlanOrThrow } from './plans.js';
import { planPrune, planRetention, type PruneDecision } from './retention.js';
import { planSchedule } from './schedule.js';

export function pruneDecisions(plan: PlanRecord, ctx: Context): PruneDecision[] {
  // A `missing` backup (its manifest is gone) is no copy: it neither counts as kept nor is pruned.
  const backups = ctx.catalog().listBackups({ planId: plan.id }).filter((b) => b.status !== 'missing');
  const schedule = planSchedule(plan);
  const tz = schedule.kind === 'manual' ? 'UTC' : schedule.tz;
  const decisions = planPrune(planRetention(plan), backups, ctx.clock(), tz);
  // Backups of other plans (incrementals on this plan's fulls) may depend on ours: never
  // delete a backup that a backup outside the deletion set builds on.
  const all = ctx.catalog().listBackups();
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

export async function applyRetention(plan: PlanRecord, ctx: Context): Promise<string[]> {
  const catalog = ctx.catalog();
  const deleted: string[] = [];
  // Newest first, so an incremental goes before the backup it builds on.
  for (const d of pruneDecisions(plan, ctx).sort((a, b) => (a.id < b.id ? 1 : -1))) {
    const b = catalog.getBackup(d.id);
    if (!b) continue;
    await deleteBackupData(ctx, b);
    catalog.recordEvent({ resourceKind: 'plan', resourceId: plan.id, type: 'retention.deleted', level: 'info', message: `${d.id}: ${d.reason}` });
    deleted.push(d.id);
  }
  return deleted;
}

export async function runPlanPrune(o: { plan: string; dryRun?: boolean }, ctx: Context): Promise<{ plan: string; dryRun: boolean; deleted: PruneDecision[] }> {
  const plan = findPlanOrThrow(ctx.catalog(), o.plan);
  const decisions = pruneDecisions(plan, ctx);
  if (!o.dryRun) await applyRetention(plan, ctx);
  return { plan: plan.name, dryRun: Boolean(o.dryRun), deleted: decisions };
}
